//! `ffprobe`: a video's size, frame rate and frame count.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{input_args, is_capture_device, last_lines, spawn, FFPROBE};
use crate::dataset::image_info::{MAX_PIXELS, MAX_SIDE};
use crate::video::VideoError;

/// What [`probe`] found out about a video's first video stream.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Frame size as decoded (after the stream's rotation, which ffmpeg applies).
    pub width: u32,
    pub height: u32,
    /// Average frames per second (else the stream's base rate), when known.
    pub fps: Option<f64>,
    /// The number of frames the container declares, when it does.
    pub frames: Option<u64>,
    /// Duration in seconds, when known.
    pub duration: Option<f64>,
    /// The codec's short name (`h264`, `mjpeg`, …).
    pub codec: String,
}

impl VideoInfo {
    /// The number of frames to expect: the declared count, else duration × fps rounded;
    /// `None` for a live source or a container that says neither.
    pub fn expected_frames(&self) -> Option<u64> {
        self.frames.or_else(|| match (self.duration, self.fps) {
            (Some(d), Some(f)) if d > 0.0 && f > 0.0 => Some((d * f).round() as u64),
            _ => None,
        })
    }

    /// Bytes of one raw RGB frame.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

/// Reads `input`'s first video stream with `ffprobe`.
pub fn probe(input: &Path) -> Result<VideoInfo, VideoError> {
    let name = input.display().to_string();
    let fail = |reason: String| VideoError::Probe {
        input: name.clone(),
        reason,
    };
    if !is_capture_device(input) && !input.exists() {
        return Err(fail("no such file".into()));
    }
    let mut command = Command::new(FFPROBE);
    command
        .args(["-v", "error", "-print_format", "json"])
        .args(["-show_streams", "-show_format", "-select_streams", "v:0"])
        .args(input_args(input))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(FFPROBE, &mut command)?;
    let output = child.wait_with_output().map_err(|source| VideoError::Io {
        path: name.clone(),
        source,
    })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let reason = last_lines(&text, 3);
        return Err(fail(if reason.is_empty() {
            format!("ffprobe failed ({})", output.status)
        } else {
            reason
        }));
    }
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| fail(format!("ffprobe's answer is not JSON: {e}")))?;
    parse_probe(&doc).map_err(fail)
}

/// [`VideoInfo`] from ffprobe's `-show_streams -show_format` JSON.
fn parse_probe(doc: &serde_json::Value) -> Result<VideoInfo, String> {
    let stream = doc["streams"]
        .as_array()
        .and_then(|s| s.first())
        .ok_or("it has no video stream")?;
    let dim = |key: &str| -> Result<u32, String> {
        stream[key]
            .as_u64()
            .filter(|&v| v > 0 && v <= u64::from(MAX_SIDE))
            .map(|v| v as u32)
            .ok_or_else(|| format!("the video stream has no usable {key} ({})", stream[key]))
    };
    let (mut width, mut height) = (dim("width")?, dim("height")?);
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "{width}×{height} pixels is larger than detlab accepts"
        ));
    }
    if rotation(stream).is_some_and(|r| (r.round() as i64).rem_euclid(180) == 90) {
        std::mem::swap(&mut width, &mut height);
    }
    let rate = |key: &str| stream[key].as_str().and_then(parse_rate);
    let fps = rate("avg_frame_rate").or_else(|| rate("r_frame_rate"));
    let number = |v: &serde_json::Value| -> Option<f64> {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .or_else(|| v.as_f64())
            .filter(|x| x.is_finite() && *x > 0.0)
    };
    let frames = number(&stream["nb_frames"]).map(|f| f as u64);
    let duration = number(&stream["duration"]).or_else(|| number(&doc["format"]["duration"]));
    Ok(VideoInfo {
        width,
        height,
        fps,
        frames,
        duration,
        codec: stream["codec_name"].as_str().unwrap_or("?").to_string(),
    })
}

/// The stream's rotation in degrees (display matrix side data, or the older `rotate`
/// tag), when it has one.
fn rotation(stream: &serde_json::Value) -> Option<f64> {
    let from_side_data = stream["side_data_list"].as_array().and_then(|list| {
        list.iter().find_map(|d| {
            d["rotation"]
                .as_f64()
                .or_else(|| d["rotation"].as_i64().map(|r| r as f64))
        })
    });
    from_side_data.or_else(|| {
        stream["tags"]["rotate"]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
    })
}

/// `30000/1001` or `25` as frames per second; `0/0` (unknown) is `None`.
fn parse_rate(s: &str) -> Option<f64> {
    let rate = match s.split_once('/') {
        Some((n, d)) => n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?,
        None => s.trim().parse().ok()?,
    };
    (rate.is_finite() && rate > 0.0).then_some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_parse_and_unknown_is_none() {
        assert_eq!(parse_rate("25/1"), Some(25.0));
        assert!((parse_rate("30000/1001").unwrap() - 29.97).abs() < 0.01);
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("12.5"), Some(12.5));
        assert_eq!(parse_rate("x"), None);
    }

    #[test]
    fn probe_json_gives_size_rate_count_and_rotation() {
        let doc = json!({
            "streams": [{"codec_name": "h264", "width": 320, "height": 240,
                "avg_frame_rate": "4/1", "r_frame_rate": "4/1", "nb_frames": "8",
                "duration": "2.000000"}],
            "format": {"duration": "2.0"}
        });
        let info = parse_probe(&doc).unwrap();
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.fps, Some(4.0));
        assert_eq!(info.frames, Some(8));
        assert_eq!(info.expected_frames(), Some(8));
        assert_eq!(info.codec, "h264");

        let doc = json!({
            "streams": [{"codec_name": "h264", "width": 320, "height": 240,
                "avg_frame_rate": "0/0", "r_frame_rate": "10/1",
                "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}],
            "format": {"duration": "1.5"}
        });
        let info = parse_probe(&doc).unwrap();
        assert_eq!((info.width, info.height), (240, 320));
        assert_eq!(info.fps, Some(10.0));
        assert_eq!(info.frames, None);
        assert_eq!(info.expected_frames(), Some(15));

        assert!(parse_probe(&json!({"streams": []})).is_err());
        let huge = json!({"streams": [{"width": 40000, "height": 10}]});
        assert!(parse_probe(&huge).is_err());
    }
}
