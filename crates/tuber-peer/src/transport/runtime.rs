//! The tokio runtime `webrtc` drives connections on, with UDP socket buffers
//! set as FIELD-NOTES require, paced sends (`pacing`), and the default bind
//! addresses.
//!
//! `webrtc` 0.21.1 binds its sockets itself and has no buffer setting; the one
//! hook between bind and use is [`Runtime::wrap_udp_socket`], so
//! [`TunedRuntime`] delegates everything to the library's `TokioRuntime` and
//! sets the buffers there.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pacing::{PacedUdpSocket, Pacing};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// What the kernel granted for a UDP socket's buffers, read back after
/// setting them. On Linux the kernel reports twice the usable size
/// (socket(7)); the halved, usable figure is given here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBufferReport {
    /// Bytes asked for ([`super::RtcConfig::socket_buffer`]).
    pub requested: usize,
    /// Receive buffer granted.
    pub recv: usize,
    /// Send buffer granted.
    pub send: usize,
    /// Either buffer is smaller than asked (the kernel capped it at
    /// `net.core.rmem_max` / `net.core.wmem_max`).
    pub short: bool,
}

static LAST_REPORT: Mutex<Option<SocketBufferReport>> = Mutex::new(None);
static WARNED_SHORT: AtomicBool = AtomicBool::new(false);

/// The socket buffers the kernel granted to the last UDP socket bound for a
/// connection (process-wide; `None` before the first). When `short`, fast
/// transfers stall on packet loss; the fix is raising `net.core.rmem_max` and
/// `net.core.wmem_max` (a sysctl.d drop-in), which is logged once.
pub fn socket_buffer_report() -> Option<SocketBufferReport> {
    match LAST_REPORT.lock() {
        Ok(guard) => *guard,
        Err(poisoned) => *poisoned.into_inner(),
    }
}

fn record(report: SocketBufferReport) {
    match LAST_REPORT.lock() {
        Ok(mut guard) => *guard = Some(report),
        Err(poisoned) => *poisoned.into_inner() = Some(report),
    }
    if report.short && !WARNED_SHORT.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            requested = report.requested,
            recv = report.recv,
            send = report.send,
            "the kernel capped the WebRTC UDP socket buffers below the {} bytes asked for; \
             transfers will stall on packet loss. Raise the limits, e.g. \
             `sysctl -w net.core.rmem_max={} net.core.wmem_max={}` \
             (persist in /etc/sysctl.d/)",
            report.requested,
            report.requested,
            report.requested,
        );
    }
}

/// Set `SO_RCVBUF`/`SO_SNDBUF` to `size`, force them past the sysctl cap when
/// privileged and cut short, and read back what was granted.
fn tune_socket(socket: &std::net::UdpSocket, size: usize) -> SocketBufferReport {
    let sock = socket2::SockRef::from(socket);
    if let Err(err) = sock.set_recv_buffer_size(size) {
        tracing::debug!(%err, "SO_RCVBUF");
    }
    if let Err(err) = sock.set_send_buffer_size(size) {
        tracing::debug!(%err, "SO_SNDBUF");
    }
    let mut recv = usable(sock.recv_buffer_size());
    let mut send = usable(sock.send_buffer_size());
    if recv < size && force_buffer(socket, size, Buffer::Recv) {
        recv = usable(sock.recv_buffer_size());
    }
    if send < size && force_buffer(socket, size, Buffer::Send) {
        send = usable(sock.send_buffer_size());
    }
    SocketBufferReport {
        requested: size,
        recv,
        send,
        short: recv < size || send < size,
    }
}

/// The usable size from a read-back `SO_RCVBUF`/`SO_SNDBUF`.
fn usable(read_back: io::Result<usize>) -> usize {
    let value = read_back.unwrap_or(0);
    if cfg!(any(target_os = "linux", target_os = "android")) {
        value / 2
    } else {
        value
    }
}

#[derive(Clone, Copy)]
enum Buffer {
    Recv,
    Send,
}

/// `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`: needs `CAP_NET_ADMIN`, fails harmlessly
/// otherwise. Whether it succeeded.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn force_buffer(socket: &std::net::UdpSocket, size: usize, which: Buffer) -> bool {
    use nix::sys::socket::{setsockopt, sockopt};
    let result = match which {
        Buffer::Recv => setsockopt(socket, sockopt::RcvBufForce, &size),
        Buffer::Send => setsockopt(socket, sockopt::SndBufForce, &size),
    };
    result.is_ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn force_buffer(_socket: &std::net::UdpSocket, _size: usize, _which: Buffer) -> bool {
    false
}

/// The default bind addresses: every up, non-loopback, non-link-local IPv4
/// interface address, then `127.0.0.1`, all on port 0.
pub(crate) fn default_udp_addrs() -> Vec<String> {
    let mut ips: Vec<std::net::Ipv4Addr> = Vec::new();
    for ip in interface_ipv4s() {
        if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips.push(std::net::Ipv4Addr::LOCALHOST);
    ips.into_iter().map(|ip| format!("{ip}:0")).collect()
}

#[cfg(unix)]
fn interface_ipv4s() -> Vec<std::net::Ipv4Addr> {
    use nix::net::if_::InterfaceFlags;
    match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => addrs
            .filter(|ifa| ifa.flags.contains(InterfaceFlags::IFF_UP))
            .filter_map(|ifa| ifa.address.as_ref()?.as_sockaddr_in().map(|sin| sin.ip()))
            .collect(),
        Err(err) => {
            tracing::warn!(%err, "getifaddrs failed; binding loopback only");
            Vec::new()
        }
    }
}

#[cfg(not(unix))]
fn interface_ipv4s() -> Vec<std::net::Ipv4Addr> {
    match rtc::shared::ifaces::ifaces() {
        Ok(ifaces) => ifaces
            .into_iter()
            .filter_map(|iface| match iface.addr?.ip() {
                std::net::IpAddr::V4(ip) => Some(ip),
                std::net::IpAddr::V6(_) => None,
            })
            .collect(),
        Err(err) => {
            tracing::warn!(%err, "interface enumeration failed; binding loopback only");
            Vec::new()
        }
    }
}

/// `webrtc`'s tokio runtime with tuned UDP socket buffers.
#[derive(Debug)]
pub(crate) struct TunedRuntime {
    inner: TokioRuntime,
    socket_buffer: usize,
    pacing: Pacing,
}

impl TunedRuntime {
    pub(crate) fn new(socket_buffer: usize, pacing: Pacing) -> Self {
        Self {
            inner: TokioRuntime,
            socket_buffer,
            pacing,
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for TunedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        // Must be forwarded: the trait's default would fall back to `spawn`
        // and lose the library's pinned reactor threads.
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        if self.socket_buffer > 0 {
            record(tune_socket(&socket, self.socket_buffer));
        }
        let socket = self.inner.wrap_udp_socket(socket)?;
        Ok(PacedUdpSocket::wrap(socket, self.pacing))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tuber-tokio"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_addrs_are_concrete_and_include_loopback() {
        let addrs = default_udp_addrs();
        assert!(addrs.contains(&"127.0.0.1:0".to_owned()));
        assert!(addrs.iter().all(|a| !a.starts_with("0.0.0.0")));
    }

    #[test]
    fn tuning_reports_what_was_granted() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let report = tune_socket(&socket, 1 << 20);
        assert_eq!(report.requested, 1 << 20);
        assert!(report.recv > 0 && report.send > 0);
        assert_eq!(report.short, report.recv < 1 << 20 || report.send < 1 << 20);
    }
}
