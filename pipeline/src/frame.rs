//! Checksummed frames: `len: u32 LE | crc: u32 LE | body[len]`, with the CRC32C taken over the
//! length bytes and the body, so a torn length is caught as surely as a torn body.

pub const HEADER_LEN: usize = 8;

/// Frames larger than this are refused when written and treated as damage when read, so that a
/// garbage length can never make a reader allocate gigabytes.
pub const MAX_BODY_LEN: usize = 1 << 30;

fn checksum(len_bytes: [u8; 4], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), body)
}

/// Appends one frame holding `body` to `out` and returns its CRC.
pub fn encode_into(out: &mut Vec<u8>, body: &[u8]) -> u32 {
    assert!(
        body.len() <= MAX_BODY_LEN,
        "frame body of {} bytes",
        body.len()
    );
    let len_bytes = (body.len() as u32).to_le_bytes();
    let crc = checksum(len_bytes, body);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(body);
    crc
}

/// Turns `buf` — `HEADER_LEN` bytes of room, then the body — into one frame by writing its
/// header; returns its CRC. The body is never copied.
pub fn seal_in_place(buf: &mut [u8]) -> u32 {
    let body_len = buf.len() - HEADER_LEN;
    assert!(body_len <= MAX_BODY_LEN, "frame body of {body_len} bytes");
    let len_bytes = (body_len as u32).to_le_bytes();
    let crc = checksum(len_bytes, &buf[HEADER_LEN..]);
    buf[..4].copy_from_slice(&len_bytes);
    buf[4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    crc
}

pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    encode_into(&mut out, body);
    out
}

/// One whole, checksum-valid frame found in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef {
    pub offset: u64,
    pub crc: u32,
    pub body_start: usize,
    pub body_end: usize,
}

impl FrameRef {
    pub fn end(&self) -> u64 {
        self.body_end as u64
    }
}

/// The valid prefix of a file of frames, and what follows it.
#[derive(Debug)]
pub struct Scan {
    pub frames: Vec<FrameRef>,
    /// Length of the valid prefix: everything from here on is a torn or damaged tail.
    pub valid_len: u64,
    /// How many frame headers could be walked in the tail (at least 1 if the tail is not
    /// empty): a best-effort count of the frames lost.
    pub tail_frames: u64,
}

/// Scans `buf` frame by frame; the first incomplete or checksum-failing frame ends the prefix.
pub fn scan(buf: &[u8]) -> Scan {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while let Some(frame) = frame_at(buf, pos) {
        pos = frame.body_end;
        frames.push(frame);
    }
    Scan {
        frames,
        valid_len: pos as u64,
        tail_frames: count_tail_frames(buf, pos),
    }
}

/// The whole, valid frame starting at `pos`, if there is one.
pub fn frame_at(buf: &[u8], pos: usize) -> Option<FrameRef> {
    let header = buf.get(pos..pos.checked_add(HEADER_LEN)?)?;
    let len_bytes: [u8; 4] = header[0..4].try_into().ok()?;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_BODY_LEN {
        return None;
    }
    let body_start = pos + HEADER_LEN;
    let body = buf.get(body_start..body_start.checked_add(len)?)?;
    (checksum(len_bytes, body) == crc).then_some(FrameRef {
        offset: pos as u64,
        crc,
        body_start,
        body_end: body_start + len,
    })
}

fn count_tail_frames(buf: &[u8], mut pos: usize) -> u64 {
    let mut count = 0;
    while pos < buf.len() {
        count += 1;
        let Some(len_bytes) = buf.get(pos..pos + 4) else {
            break;
        };
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        match pos.checked_add(HEADER_LEN + len) {
            Some(next) if len <= MAX_BODY_LEN && next > pos => pos = next,
            _ => break,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_frames_scan_back() {
        let mut buf = Vec::new();
        encode_into(&mut buf, b"one");
        encode_into(&mut buf, b"");
        encode_into(&mut buf, b"three");
        let scan = scan(&buf);
        assert_eq!(scan.frames.len(), 3);
        assert_eq!(scan.valid_len, buf.len() as u64);
        assert_eq!(scan.tail_frames, 0);
        let f = scan.frames[2];
        assert_eq!(&buf[f.body_start..f.body_end], b"three");
    }

    #[test]
    fn any_truncation_ends_the_prefix_at_a_frame_boundary() {
        let mut buf = Vec::new();
        encode_into(&mut buf, b"first frame");
        let boundary = buf.len();
        encode_into(&mut buf, b"second frame");
        for cut in boundary..buf.len() {
            let scan = scan(&buf[..cut]);
            assert_eq!(scan.frames.len(), 1, "cut at {cut}");
            assert_eq!(scan.valid_len, boundary as u64);
            assert_eq!(scan.tail_frames, u64::from(cut > boundary));
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_the_frame() {
        let buf = encode(b"payload bytes");
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                assert!(scan(&damaged).frames.is_empty(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn zeroed_tail_is_not_a_frame() {
        let mut buf = encode(b"x");
        buf.extend_from_slice(&[0u8; 64]);
        let scan = scan(&buf);
        assert_eq!(scan.frames.len(), 1);
        assert!(scan.tail_frames >= 1);
    }
}
