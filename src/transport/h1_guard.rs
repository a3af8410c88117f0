//! Request-smuggling guard for HTTP/1.1 connections.
//!
//! hyper resolves a request carrying both `Content-Length` and `Transfer-Encoding` the
//! safe way (chunked wins, the length is dropped, the connection closes afterwards), but it
//! does so silently, and by the time the request reaches a service the evidence is gone.
//! A gateway must refuse such requests outright (RFC 9112 6.3: a server MAY reject them,
//! and a proxy that forwards them is how smuggling starts). This scanner follows the
//! client's byte stream alongside hyper, tracking message framing just far enough to see
//! every request head, and raises a flag when one carries both headers. The server tags
//! the request, the early-refusal step ([`super::early`]) answers 400 inside the observed
//! pipeline, and the connection closes.
//!
//! Because it knows where heads start and end, it also tells the connection's watchdog
//! whether a request head is in progress (for `header_read_timeout`) and enforces
//! `max_header_bytes` below hyper's 8 KiB read-buffer floor.
//!
//! It is a follower, not a parser: on anything it does not understand (an upgrade, a
//! framing it cannot follow) it stops scanning, and hyper's own parser remains the
//! authority on what is a valid request.

/// Longest header name the scanner needs to recognise, plus slack.
const NAME_BUF: usize = 20;

/// The request line of a tunnel request starts with this.
const CONNECT: &[u8] = b"CONNECT ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line in a request head.
    LineStart,
    /// Reading a header name (bytes go into `name`).
    Name,
    /// Rest of the line after the name, or the request line: skip to `\n`.
    SkipLine,
    /// `n` body bytes remain (Content-Length framing).
    Body(u64),
    /// Reading a chunk-size line (hex digits, then extensions to `\n`).
    ChunkSize,
    /// `n` chunk bytes remain, then CRLF.
    ChunkData(u64),
    /// After chunk data: skip the CRLF line ending.
    ChunkEnd,
    /// Trailer section after the last chunk: lines until an empty one.
    TrailerLineStart,
    TrailerSkip,
    /// Not following any more (upgrade, CONNECT, something odd). Hyper decides.
    Stopped,
}

/// Follows one HTTP/1.1 connection's request stream.
#[derive(Debug)]
pub struct H1Guard {
    state: State,
    /// The first line of a head is the request line, not a header.
    request_line: bool,
    name: [u8; NAME_BUF],
    name_len: usize,
    /// Content-Length seen in this head (value accumulates digits while parsing the value).
    content_length: Option<u64>,
    parsing_cl_value: bool,
    /// The Content-Length value was not a plain decimal number (hyper refuses it, unless a
    /// Transfer-Encoding came first, in which case hyper ignores it: we refuse both).
    cl_malformed: bool,
    transfer_encoding: bool,
    /// Reading a Transfer-Encoding value into `te_value`.
    parsing_te_value: bool,
    te_value: [u8; 16],
    te_len: usize,
    /// A Transfer-Encoding other than exactly `chunked` (e.g. `gzip, chunked`): hyper
    /// would decode the chunking and silently drop the other coding.
    te_unsupported: bool,
    upgrade: bool,
    connect: bool,
    /// Bytes of `CONNECT ` matched so far at the start of the request line; `None` once it
    /// matched or cannot. Matched byte by byte because a read may end inside the method.
    connect_match: Option<usize>,
    chunk_size: u64,
    chunk_digits: bool,
    chunk_ext: bool,
    /// Set once a head carried both Content-Length and Transfer-Encoding.
    conflict: bool,
    /// Bytes of the current head seen so far (0 = between requests).
    head_len: usize,
    /// Largest head accepted (`max_header_bytes`).
    max_head: usize,
    /// Set once a head grew past `max_head`.
    too_large: bool,
    /// The guard stopped following in the middle of a request head.
    stopped_in_head: bool,
    /// Requests (head and body) that ended so far.
    completed: u64,
}

impl Default for H1Guard {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl H1Guard {
    /// A guard for a new connection; heads larger than `max_head` bytes are flagged.
    pub fn new(max_head: usize) -> Self {
        Self {
            state: State::LineStart,
            request_line: true,
            name: [0; NAME_BUF],
            name_len: 0,
            content_length: None,
            parsing_cl_value: false,
            cl_malformed: false,
            transfer_encoding: false,
            parsing_te_value: false,
            te_value: [0; 16],
            te_len: 0,
            te_unsupported: false,
            upgrade: false,
            connect: false,
            connect_match: None,
            chunk_size: 0,
            chunk_digits: false,
            chunk_ext: false,
            conflict: false,
            head_len: 0,
            max_head,
            too_large: false,
            stopped_in_head: false,
            completed: 0,
        }
    }

    /// Requests whose head and body have both ended.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// True between requests: every byte seen so far belongs to a request that ended
    /// (empty lines before the next request line aside). Together with [`Self::completed`]
    /// equal to the requests hyper dispatched, this says hyper holds no unread request, so
    /// the connection can be parked without hyper's buffers (`crate::transport::park`).
    pub fn at_boundary(&self) -> bool {
        self.state == State::LineStart && self.request_line && self.head_len == 0
    }

    /// True once some request head used a transfer coding other than plain `chunked`.
    pub fn unsupported_coding(&self) -> bool {
        self.te_unsupported
    }

    /// True when the guard stopped following in the middle of a request head: the head
    /// is still unfinished, so `header_read_timeout` must keep running until hyper
    /// dispatches or refuses it.
    pub fn stopped_in_head(&self) -> bool {
        self.stopped_in_head
    }

    /// Stop following the stream (remembering whether a head was in progress).
    fn stop(&mut self) {
        self.stopped_in_head = self.in_head();
        self.state = State::Stopped;
    }

    /// True while a request head has started but not ended (between requests, in a body,
    /// or once stopped: false).
    pub fn in_head(&self) -> bool {
        self.head_len > 0 && matches!(self.state, State::LineStart | State::Name | State::SkipLine)
    }

    /// True once a request head exceeded the configured maximum.
    pub fn too_large(&self) -> bool {
        self.too_large
    }

    /// True once any request head on this connection had both framing headers.
    pub fn conflict(&self) -> bool {
        self.conflict
    }

    /// True when the guard has stopped following the stream.
    pub fn stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// A request ended (its head, and its body if it had one): get ready for the next.
    fn start_head(&mut self) {
        self.completed += 1;
        self.head_len = 0;
        self.state = State::LineStart;
        self.request_line = true;
        self.content_length = None;
        self.parsing_cl_value = false;
        self.cl_malformed = false;
        self.transfer_encoding = false;
        self.parsing_te_value = false;
        self.upgrade = false;
        self.connect = false;
        self.connect_match = None;
    }

    fn end_head(&mut self) {
        self.head_len = 0;
        if self.content_length.is_some() && self.transfer_encoding {
            self.conflict = true;
            self.state = State::Stopped;
            return;
        }
        if self.cl_malformed {
            // hyper refuses a malformed length without Transfer-Encoding; nothing to follow.
            self.state = State::Stopped;
            return;
        }
        if self.upgrade || self.connect {
            // After a successful upgrade the stream is no longer HTTP; we cannot know from
            // here whether it succeeded, so stop (hyper stays the authority).
            self.state = State::Stopped;
            return;
        }
        if self.transfer_encoding {
            self.chunk_size = 0;
            self.chunk_digits = false;
            self.chunk_ext = false;
            self.state = State::ChunkSize;
        } else {
            match self.content_length {
                Some(n) if n > 0 => self.state = State::Body(n),
                _ => self.start_head(),
            }
        }
    }

    /// A Transfer-Encoding line ended: anything but `chunked` (any case, surrounding
    /// spaces allowed) is a coding we do not pass through.
    fn end_te_value(&mut self) {
        let v = self.te_value[..self.te_len].trim_ascii();
        if !v.eq_ignore_ascii_case(b"chunked") {
            self.te_unsupported = true;
        }
    }

    fn end_name(&mut self) {
        let name = &self.name[..self.name_len];
        if name.eq_ignore_ascii_case(b"content-length") {
            self.parsing_cl_value = true;
            if self.content_length.is_none() {
                self.content_length = Some(0);
            } else {
                // A repeated Content-Length: hyper checks the values agree; we only need
                // to know one was present. Keep the first value.
                self.parsing_cl_value = false;
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
            self.parsing_te_value = true;
            self.te_len = 0;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade = true;
        }
    }

    /// Feed bytes as they are read from the client, in order.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            // Fast path: the rest of a header line (most of a head, e.g. a 1.5 KB bearer
            // token) needs no byte-by-byte look; jump to its end.
            if self.state == State::SkipLine
                && !self.parsing_cl_value
                && !self.parsing_te_value
                && self.connect_match.is_none()
            {
                let rest = &bytes[i..];
                let skip = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                if skip > 0 {
                    self.head_len += skip;
                    if self.head_len > self.max_head {
                        self.too_large = true;
                        self.stop();
                        return;
                    }
                    i += skip;
                    continue;
                }
            }
            let b = bytes[i];
            if matches!(self.state, State::LineStart | State::Name | State::SkipLine)
                && !(self.head_len == 0 && self.request_line && (b == b'\r' || b == b'\n'))
            {
                self.head_len += 1;
                if self.head_len > self.max_head {
                    self.too_large = true;
                    self.stop();
                    return;
                }
            }
            match self.state {
                State::Stopped => return,
                State::LineStart => {
                    if b == b'\r' {
                        i += 1;
                        continue;
                    }
                    if b == b'\n' {
                        if self.request_line {
                            // Leading empty lines before a request line are tolerated.
                            i += 1;
                            continue;
                        }
                        self.end_head();
                        i += 1;
                        continue;
                    }
                    if self.request_line {
                        self.connect_match = Some(0);
                        self.request_line = false;
                        self.state = State::SkipLine;
                        // The byte is looked at again in the next state: count it once.
                        self.head_len -= 1;
                        continue;
                    }
                    if b == b' ' || b == b'\t' {
                        // Obsolete line folding: hyper refuses it; stop following.
                        self.stop();
                        return;
                    }
                    self.name_len = 0;
                    self.state = State::Name;
                    // As above: the name's first byte is read again, and counted once.
                    self.head_len -= 1;
                }
                State::Name => {
                    if b == b':' {
                        self.end_name();
                        self.state = State::SkipLine;
                    } else if b == b'\n' {
                        // A header line without a colon: malformed, hyper will refuse.
                        self.stop();
                        return;
                    } else if self.name_len < NAME_BUF {
                        self.name[self.name_len] = b;
                        self.name_len += 1;
                    } else {
                        // Longer than any name we care about; skip its value.
                        self.name_len = NAME_BUF;
                    }
                    i += 1;
                }
                State::SkipLine => {
                    if let Some(k) = self.connect_match {
                        let matched = CONNECT.get(k) == Some(&b);
                        self.connect = matched && k + 1 == CONNECT.len();
                        self.connect_match = (matched && !self.connect).then_some(k + 1);
                    }
                    if b == b'\n' {
                        if self.parsing_te_value {
                            self.end_te_value();
                        }
                        self.parsing_cl_value = false;
                        self.parsing_te_value = false;
                        self.state = State::LineStart;
                    } else if self.parsing_cl_value {
                        let digit = b.is_ascii_digit().then(|| {
                            self.content_length
                                .unwrap_or(0)
                                .checked_mul(10)
                                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        });
                        match digit {
                            Some(Some(v)) => self.content_length = Some(v),
                            // Overflow, or not a plain number: remember it and keep
                            // following (see `cl_malformed`).
                            Some(None) => {
                                self.cl_malformed = true;
                                self.parsing_cl_value = false;
                            }
                            None if b == b' ' || b == b'\t' || b == b'\r' => {}
                            None => {
                                self.cl_malformed = true;
                                self.parsing_cl_value = false;
                            }
                        }
                    } else if self.parsing_te_value && b != b'\r' {
                        if self.te_len < self.te_value.len() {
                            self.te_value[self.te_len] = b;
                            self.te_len += 1;
                        } else {
                            self.te_unsupported = true;
                            self.parsing_te_value = false;
                        }
                    }
                    i += 1;
                }
                State::Body(n) => {
                    let take = (bytes.len() - i).min(usize::try_from(n).unwrap_or(usize::MAX));
                    i += take;
                    let left = n - take as u64;
                    if left == 0 {
                        self.start_head();
                    } else {
                        self.state = State::Body(left);
                    }
                }
                State::ChunkSize => {
                    i += 1;
                    if b == b'\n' {
                        if !self.chunk_digits {
                            self.state = State::Stopped;
                            return;
                        }
                        if self.chunk_size == 0 {
                            self.state = State::TrailerLineStart;
                        } else {
                            self.state = State::ChunkData(self.chunk_size);
                        }
                        self.chunk_size = 0;
                        self.chunk_digits = false;
                        self.chunk_ext = false;
                    } else if self.chunk_ext || b == b'\r' {
                        // extensions and the CR are skipped
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.chunk_ext = true;
                    } else if let Some(d) = (b as char).to_digit(16) {
                        match self
                            .chunk_size
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(u64::from(d)))
                        {
                            Some(v) => {
                                self.chunk_size = v;
                                self.chunk_digits = true;
                            }
                            None => {
                                self.state = State::Stopped;
                                return;
                            }
                        }
                    } else {
                        self.state = State::Stopped;
                        return;
                    }
                }
                State::ChunkData(n) => {
                    let take = (bytes.len() - i).min(usize::try_from(n).unwrap_or(usize::MAX));
                    i += take;
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::ChunkEnd => {
                    i += 1;
                    if b == b'\n' {
                        self.state = State::ChunkSize;
                    } else if b != b'\r' {
                        self.state = State::Stopped;
                        return;
                    }
                }
                State::TrailerLineStart => {
                    i += 1;
                    if b == b'\n' {
                        self.start_head();
                    } else if b != b'\r' {
                        self.state = State::TrailerSkip;
                    }
                }
                State::TrailerSkip => {
                    i += 1;
                    if b == b'\n' {
                        self.state = State::TrailerLineStart;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "h1_guard_tests.rs"]
mod tests;
