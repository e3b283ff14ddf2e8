use super::template::*;
use super::*;

fn own() -> Vec<String> {
    vec![
        "http://127.0.0.1:8080".to_string(),
        "https://hub.example".to_string(),
    ]
}

#[test]
fn durations() {
    assert_eq!(parse_duration("PT1H2M3.5S"), Some(3723.5));
    assert_eq!(parse_duration("PT30S"), Some(30.0));
    assert_eq!(parse_duration("P1DT1S"), Some(86_401.0));
    assert_eq!(parse_duration("P0Y0M0DT0H3M30.000S"), Some(210.0));
    for bad in [
        "", "P", "PT", "PT1", "1S", "PTS", "PT1S2M", "-PT1S", "PT1.2.3S",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn templates() {
    let vars = Vars {
        id: Some("v720"),
        bandwidth: Some("3000000"),
        number: Some(42),
        time: Some(180_000),
    };
    let e = |t: &str| expand(t, &vars);
    assert_eq!(
        e("$RepresentationID$/seg-$Number%05d$.m4s").as_deref(),
        Some("v720/seg-00042.m4s")
    );
    assert_eq!(
        e("t$Time$-b$Bandwidth$-$$.mp4").as_deref(),
        Some("t180000-b3000000-$.mp4")
    );
    assert_eq!(e("$Bandwidth%09d$").as_deref(), Some("003000000"));
    assert_eq!(e("$Number%d$").as_deref(), Some("42"));
    assert_eq!(e("plain.mp4").as_deref(), Some("plain.mp4"));
    for bad in ["$SubNumber$", "$Number", "$Number%05x$", "$Number%099d$"] {
        assert_eq!(e(bad), None, "{bad:?}");
    }
    let no_number = Vars {
        number: None,
        ..vars
    };
    assert_eq!(expand("$Number$.m4s", &no_number), None);
}

/// A live-style MPD: a template with a timeline (explicit `t`, repeats,
/// and a final `r="-1"` that runs to the next entry), nested BaseURLs.
#[test]
fn template_with_timeline() {
    let mpd = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"
 availabilityStartTime="2024-01-01T00:00:00Z" minimumUpdatePeriod="PT2S"
 profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <!-- a comment with <Period> inside -->
  <BaseURL>http://127.0.0.1:8080/live/</BaseURL>
  <Period id="p0" start="PT0S">
<AdaptationSet mimeType="video/mp4" segmentAlignment="true">
  <BaseURL>video/</BaseURL>
  <ContentProtection schemeIdUri="urn:x"><BaseURL>/not-media/</BaseURL></ContentProtection>
  <SegmentTemplate timescale="90000" startNumber="100"
      initialization="$RepresentationID$/init.mp4"
      media="$RepresentationID$/$Number%06d$-$Time$.m4s?a=1&amp;b=2">
    <SegmentTimeline>
      <S t="900000" d="180000" r="2"/>
      <S d="90000"/>
      <S d="180000" r="-1"/>
      <S t="2000000" d="180000"/>
    </SegmentTimeline>
  </SegmentTemplate>
  <Representation id="v1" bandwidth="800000" width="640" height="360"/>
  <Representation id="v2" bandwidth="3000000" width="1280" height="720"/>
</AdaptationSet>
<AdaptationSet mimeType="audio/mp4">
  <Representation id="a1" bandwidth="128000">
    <SegmentTemplate timescale="48000" media="https://hub.example/audio/$Time$.m4a"
        initialization="https://cdn.elsewhere.example/audio/init.mp4">
      <SegmentTimeline><S t="0" d="96000" r="1"/></SegmentTimeline>
    </SegmentTemplate>
  </Representation>
</AdaptationSet>
  </Period>
</MPD>"#;
    let got = dash_segment_uris("/live/stream.mpd?token=t", mpd, &own());
    let mut want = Vec::new();
    for rep in ["v1", "v2"] {
        want.push(format!("/live/video/{rep}/init.mp4"));
        // 3 × 180000 from 900000, one 90000, then 180000s until 2000000
        // (from 1530000: 3 segments), then the last one.
        let times = [
            900_000, 1_080_000, 1_260_000, 1_440_000, 1_530_000, 1_710_000, 1_890_000, 2_000_000,
        ];
        for (i, t) in times.iter().enumerate() {
            let n = 100 + i;
            want.push(format!("/live/video/{rep}/{n:06}-{t}.m4s?a=1&b=2"));
        }
    }
    want.push("/audio/0.m4a".to_string());
    want.push("/audio/96000.m4a".to_string());
    assert_eq!(got, want);
}

/// An on-demand MPD with a SegmentList per Representation, and an
/// inherited `duration` template in a second period.
#[test]
fn segment_list_and_duration_template() {
    let mpd = r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT0H0M30.00S">
  <Period duration="PT10S">
<AdaptationSet mimeType="video/mp4">
  <Representation id="low" bandwidth="400000">
    <BaseURL>low/</BaseURL>
    <SegmentList timescale="1000" duration="4000">
      <Initialization sourceURL="init.mp4"/>
      <SegmentURL media="s1.m4s"/>
      <SegmentURL media="s2.m4s" mediaRange="0-999"/>
      <SegmentURL media="../shared/s3.m4s"/>
      <SegmentURL media="//cdn.elsewhere.example/s4.m4s"/>
    </SegmentList>
  </Representation>
</AdaptationSet>
  </Period>
  <Period start="PT10S">
<SegmentTemplate media="p2/$RepresentationID$-$Number$.m4s" duration="8" timescale="2"
    startNumber="0"/>
<AdaptationSet mimeType="video/mp4">
  <Representation id="hi" bandwidth="3000000"/>
</AdaptationSet>
  </Period>
</MPD>"#;
    let got = dash_segment_uris("/vod/movie/manifest.mpd", mpd, &own());
    assert_eq!(
        got,
        [
            "/vod/movie/low/init.mp4",
            "/vod/movie/low/s1.m4s",
            "/vod/movie/low/s2.m4s",
            "/vod/movie/shared/s3.m4s",
            // 20 s left of 30, 4 s segments.
            "/vod/movie/p2/hi-0.m4s",
            "/vod/movie/p2/hi-1.m4s",
            "/vod/movie/p2/hi-2.m4s",
            "/vod/movie/p2/hi-3.m4s",
            "/vod/movie/p2/hi-4.m4s",
        ]
    );
}

/// Single-file Representations (SegmentBase, on-demand profile); a
/// cross-origin BaseURL drops its whole subtree.
#[test]
fn base_url_single_files() {
    let mpd = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT634.566S"
 profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <Period>
<AdaptationSet mimeType="video/mp4">
  <Representation id="1" bandwidth="4000000">
    <BaseURL>video_1080p.mp4</BaseURL>
    <SegmentBase indexRange="896-2551"><Initialization range="0-895"/></SegmentBase>
  </Representation>
  <Representation id="2" bandwidth="1000000">
    <BaseURL>https://cdn.elsewhere.example/video_480p.mp4</BaseURL>
    <BaseURL>http://127.0.0.1:8080/mirror/video_480p.mp4</BaseURL>
  </Representation>
  <Representation id="3" bandwidth="500000">
    <BaseURL>https://cdn.elsewhere.example/video_240p.mp4</BaseURL>
  </Representation>
</AdaptationSet>
<AdaptationSet mimeType="audio/mp4">
  <BaseURL><![CDATA[audio/]]></BaseURL>
  <Representation id="a" bandwidth="128000">
    <BaseURL>en&#46;m4a</BaseURL>
    <SegmentBase><Initialization sourceURL="en-init.mp4"/></SegmentBase>
  </Representation>
</AdaptationSet>
  </Period>
</MPD>"#;
    let got = dash_segment_uris("/films/f.mpd", mpd, &own());
    assert_eq!(
        got,
        [
            "/films/video_1080p.mp4",
            "/mirror/video_480p.mp4",
            "/films/audio/en.m4a",
            "/films/audio/en-init.mp4",
        ]
    );
}

#[test]
fn counts_are_capped_and_bad_input_yields_nothing() {
    let huge = r#"<MPD><Period><AdaptationSet><Representation id="x">
        <SegmentTemplate media="$Number$.m4s"><SegmentTimeline>
        <S d="1" r="999999999999"/></SegmentTimeline></SegmentTemplate>
        </Representation></AdaptationSet></Period></MPD>"#;
    let got = dash_segment_uris("/m.mpd", huge, &own());
    assert_eq!(got.len(), MAX_SEGMENTS_PER_REPRESENTATION);
    assert_eq!(got[0], "/1.m4s");

    let endless = r#"<MPD mediaPresentationDuration="P100000Y"><Period><AdaptationSet>
        <Representation id="x"><SegmentTemplate media="$Number$.m4s" duration="1"/>
        </Representation></AdaptationSet></Period></MPD>"#;
    assert_eq!(
        dash_segment_uris("/m.mpd", endless, &own()).len(),
        MAX_SEGMENTS_PER_REPRESENTATION
    );

    // Live, no timeline: only the init segment can be known.
    let live = r#"<MPD type="dynamic"><Period><AdaptationSet><Representation id="x">
        <SegmentTemplate media="$Number$.m4s" initialization="init-$RepresentationID$.mp4"
         duration="2"/></Representation></AdaptationSet></Period></MPD>"#;
    assert_eq!(dash_segment_uris("/m.mpd", live, &own()), ["/init-x.mp4"]);

    let deep = format!("<MPD>{}</MPD>", "<Period>".repeat(100_000));
    assert!(dash_segment_uris("/m.mpd", &deep, &own()).is_empty());
    for bad in [
        "",
        "not xml",
        "<html><body>x</body></html>",
        "<MPD",
        "<<<>>>&&&",
    ] {
        assert!(
            dash_segment_uris("/m.mpd", bad, &own()).is_empty(),
            "{bad:?}"
        );
    }
    let over = format!("<MPD>{}</MPD>", " ".repeat(PLAYLIST_LIMIT));
    assert!(dash_segment_uris("/m.mpd", &over, &own()).is_empty());
}
