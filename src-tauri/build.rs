fn main() {
    // generate_context! embeds ui/ and the tray icons at compile time, but
    // tauri-build does not tell cargo to watch them: a changed dashboard
    // file would otherwise leave a stale app behind.
    println!("cargo:rerun-if-changed=../ui");
    println!("cargo:rerun-if-changed=../icons");
    tauri_build::build()
}
