//! Static files served from a directory: ETag/Last-Modified, Range, gzip/br, cache headers, SPA fallback,
//! and refusal of anything that would leave the root (`..`, encoded forms, symlinks pointing out).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;

use crate::{RespBody, empty, full};

/// Files up to this size are read into memory in one go; larger ones are streamed.
const INLINE_MAX: u64 = 256 * 1024;
/// On-the-fly compression is applied to text files between these sizes.
const COMPRESS_MIN: u64 = 256;
const COMPRESS_MAX: u64 = 8 * 1024 * 1024;

/// A static mount at run time.
#[derive(Debug)]
pub struct StaticMount {
    /// The configured root directory.
    pub root: PathBuf,
    /// Serve `index.html` for unknown paths.
    pub spa: bool,
    /// Small files already served, with their response headers (see [`FileCache`]).
    cache: FileCache,
}

impl StaticMount {
    /// A mount of `root` (with the single-page-app fallback when `spa`).
    pub fn new(root: PathBuf, spa: bool) -> StaticMount {
        StaticMount { root, spa, cache: FileCache::default() }
    }
}

/// Files up to this size are kept in memory once served.
const CACHE_FILE_MAX: u64 = 256 * 1024;
/// Bytes of file data (plus compressed forms) the cache of one mount holds at most; when full it starts over.
const CACHE_BUDGET: usize = 32 * 1024 * 1024;

/// Identity of a file's content: device, inode, size and modification time (what nginx's open file cache
/// checks). A cached entry is used only while `stat` of the request's path still gives the same identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileId {
    fn of(md: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: md.dev(),
            ino: md.ino(),
            len: md.len(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
        }
    }
}

/// One representation of a cached file: body and the headers that differ between representations.
#[derive(Debug)]
struct Repr {
    body: Bytes,
    etag: HeaderValue,
    len: HeaderValue,
}

/// A file served before: its bytes, precomputed headers, and compressed forms made on first use.
#[derive(Debug)]
struct Cached {
    id: FileId,
    /// `root` joined with the request's segments, not canonicalized: `stat` of it revalidates the entry (a
    /// replaced file, a symlink pointing elsewhere or a swapped root all change the identity).
    probe: PathBuf,
    /// The file's canonical path (for precompressed siblings).
    real: PathBuf,
    ct: HeaderValue,
    cache_control: HeaderValue,
    compress: bool,
    last_modified: HeaderValue,
    mtime: SystemTime,
    identity: Repr,
    gzip: std::sync::OnceLock<Option<Repr>>,
    br: std::sync::OnceLock<Option<Repr>>,
}

/// The cache of small files of one mount, keyed by the request path after the mount prefix.
#[derive(Debug, Default)]
struct FileCache {
    map: std::sync::RwLock<std::collections::HashMap<Box<str>, Arc<Cached>>>,
    bytes: std::sync::atomic::AtomicUsize,
}

impl FileCache {
    fn get(&self, rest: &str) -> Option<Arc<Cached>> {
        let e = self.map.read().unwrap_or_else(|e| e.into_inner()).get(rest).cloned()?;
        match std::fs::metadata(&e.probe) {
            Ok(md) if md.is_file() && FileId::of(&md) == e.id => Some(e),
            _ => None,
        }
    }

    /// Reads `real` (the located file for `segments`) into the cache when it is small and stable.
    fn fill(
        &self,
        rest: &str,
        root: &Path,
        segments: &[String],
        real: &Path,
        cache_control: &'static str,
    ) -> Option<Arc<Cached>> {
        let mut probe = root.to_path_buf();
        for s in segments {
            probe.push(s);
        }
        let pmd = std::fs::metadata(&probe).ok()?;
        if !pmd.is_file() || pmd.len() > CACHE_FILE_MAX {
            return None;
        }
        let id = FileId::of(&pmd);
        let mut f = std::fs::File::open(real).ok()?;
        if FileId::of(&f.metadata().ok()?) != id {
            return None;
        }
        let mut data = Vec::with_capacity(id.len as usize);
        f.read_to_end(&mut data).ok()?;
        let md = f.metadata().ok()?;
        if FileId::of(&md) != id || data.len() as u64 != id.len {
            return None; // changed while reading
        }
        let mtime = md.modified().ok()?;
        let ct = content_type(real);
        let entry = Arc::new(Cached {
            id,
            probe,
            real: real.to_path_buf(),
            ct: HeaderValue::from_static(ct),
            cache_control: HeaderValue::from_static(cache_control),
            compress: compressible(ct),
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(mtime)).ok()?,
            mtime,
            identity: Repr {
                etag: HeaderValue::from_str(&etag_for(&md, Enc::Identity)).ok()?,
                len: HeaderValue::from(data.len()),
                body: Bytes::from(data),
            },
            gzip: Default::default(),
            br: Default::default(),
        });
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let size = entry.identity.body.len() + rest.len();
        if self.bytes.fetch_add(size, Ordering::Relaxed) + size > CACHE_BUDGET {
            map.clear();
            self.bytes.store(size, Ordering::Relaxed);
        }
        map.insert(rest.into(), entry.clone());
        Some(entry)
    }
}

/// Answers a GET/HEAD from a cached entry, or `None` when the request needs the general path (a range, or an
/// encoding the client accepts that a precompressed sibling on disk would provide).
fn serve_cached(e: &Cached, method: &Method, headers: &HeaderMap) -> Option<Response<RespBody>> {
    if headers.contains_key(header::RANGE) {
        return None;
    }
    let mut repr = &e.identity;
    let mut enc = Enc::Identity;
    if e.compress {
        for (cand, ext) in [(Enc::Br, "br"), (Enc::Gzip, "gz")] {
            if accepts(headers, cand.token()) {
                let mut sib = e.real.clone().into_os_string();
                sib.push(".");
                sib.push(ext);
                if std::fs::metadata(&sib).is_ok_and(|m| m.is_file()) {
                    return None;
                }
            }
        }
        if (COMPRESS_MIN..=COMPRESS_MAX).contains(&e.id.len) {
            let cell = if accepts(headers, "br") {
                Some((&e.br, Enc::Br))
            } else if accepts(headers, "gzip") {
                Some((&e.gzip, Enc::Gzip))
            } else {
                None
            };
            if let Some((cell, which)) = cell {
                let r = cell.get_or_init(|| {
                    let z = compress_bytes(&e.identity.body, which)?;
                    let etag = e.identity.etag.to_str().ok()?.trim_end_matches('"').to_owned()
                        + if which == Enc::Br { "-br\"" } else { "-gz\"" };
                    Some(Repr {
                        etag: HeaderValue::from_str(&etag).ok()?,
                        len: HeaderValue::from(z.len()),
                        body: Bytes::from(z),
                    })
                });
                repr = r.as_ref()?;
                enc = which;
            }
        }
    }
    let mut r = Response::new(empty());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, e.ct.clone());
    h.insert(header::ETAG, repr.etag.clone());
    h.insert(header::CACHE_CONTROL, e.cache_control.clone());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::LAST_MODIFIED, e.last_modified.clone());
    if e.compress {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    let not_modified = match headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(inm) => etag_matches(inm, repr.etag.to_str().unwrap_or("")),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ims| modified_not_after(e.mtime, ims)),
    };
    if not_modified {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return Some(r);
    }
    if enc != Enc::Identity {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc.token()));
    }
    h.insert(header::CONTENT_LENGTH, repr.len.clone());
    if method != Method::HEAD {
        *r.body_mut() = full(repr.body.clone());
    }
    Some(r)
}

/// `If-Modified-Since`: whether the file was not modified after the given date (second precision).
fn modified_not_after(mtime: SystemTime, ims: &str) -> bool {
    httpdate::parse_http_date(ims).is_ok_and(|since| {
        mtime.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
            <= since.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    })
}

/// Percent-decodes `rest` (the path after the mount prefix) and returns its clean segments, or `None` when
/// the path is not acceptable (`..`, `.`, NUL, backslash, invalid UTF-8).
pub fn clean_segments(rest: &str) -> Option<Vec<String>> {
    let decoded = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
    let mut out = Vec::new();
    for seg in decoded.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg == ".." || seg == "." || seg.contains(['\0', '\\']) {
            return None;
        }
        out.push(seg.to_owned());
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn compressible(ct: &str) -> bool {
    ct.starts_with("text/")
        || ct.starts_with("application/json")
        || ct.starts_with("application/xml")
        || ct.starts_with("application/manifest+json")
        || ct.starts_with("application/wasm")
        || ct.starts_with("image/svg+xml")
}

/// Whether a file name carries a content hash (`app.3f9a1c2b.js`, `index-BxK3a9Zq.js`): such files never change.
pub fn is_hashed_name(name: &str) -> bool {
    let stem = match name.rsplit_once('.') {
        Some((s, _)) => s,
        None => return false,
    };
    stem.split(['.', '-', '_']).skip(1).any(|part| {
        let hex =
            part.len() >= 8 && part.bytes().all(|b| b.is_ascii_hexdigit()) && part.bytes().any(|b| b.is_ascii_digit());
        let mixed = part.len() >= 8
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
            && part.bytes().any(|b| b.is_ascii_digit())
            && part.bytes().any(|b| b.is_ascii_uppercase())
            && part.bytes().any(|b| b.is_ascii_lowercase());
        hex || mixed
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Enc {
    Identity,
    Gzip,
    Br,
}

impl Enc {
    fn token(self) -> &'static str {
        match self {
            Enc::Identity => "identity",
            Enc::Gzip => "gzip",
            Enc::Br => "br",
        }
    }
}

fn accepts(headers: &HeaderMap, enc: &str) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|item| {
            let mut parts = item.trim().split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().map(|q| q == 0.0).unwrap_or(false))
            });
            name.eq_ignore_ascii_case(enc) && !q_zero
        })
    })
}

fn not_found() -> Response<RespBody> {
    crate::plain(StatusCode::NOT_FOUND, "not found\n")
}

/// Resolves `segments` under `root`, refusing anything whose real path leaves the real root. Directories
/// resolve to their `index.html`.
fn locate(root: &Path, segments: &[String]) -> Option<(PathBuf, std::fs::Metadata)> {
    let real_root = std::fs::canonicalize(root).ok()?;
    let mut p = real_root.clone();
    for s in segments {
        p.push(s);
    }
    let real = std::fs::canonicalize(&p).ok()?;
    if !real.starts_with(&real_root) {
        return None;
    }
    let md = std::fs::metadata(&real).ok()?;
    if md.is_dir() {
        let idx = real.join("index.html");
        let real_idx = std::fs::canonicalize(&idx).ok()?;
        if !real_idx.starts_with(&real_root) {
            return None;
        }
        let md = std::fs::metadata(&real_idx).ok()?;
        return md.is_file().then_some((real_idx, md));
    }
    md.is_file().then_some((real, md))
}

fn etag_for(md: &std::fs::Metadata, enc: Enc) -> String {
    let mtime = md.modified().ok().and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).unwrap_or_default();
    let suffix = match enc {
        Enc::Identity => "",
        Enc::Gzip => "-gz",
        Enc::Br => "-br",
    };
    format!("\"{:x}-{:x}{suffix}\"", md.len(), mtime.as_nanos())
}

fn etag_matches(header_val: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    header_val.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/") == bare
    })
}

/// Serves `rest` (the request path after the mount prefix) from `mount`.
pub fn serve(method: &Method, headers: &HeaderMap, mount: &StaticMount, rest: &str) -> Response<RespBody> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = crate::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let hit = mount.cache.get(rest);
    if let Some(e) = &hit
        && let Some(r) = serve_cached(e, method, headers)
    {
        return r;
    }
    let Some(segments) = clean_segments(rest) else { return not_found() };
    let (path, md, fallback) = match locate(&mount.root, &segments) {
        Some((p, m)) => (p, m, false),
        None if mount.spa && spa_eligible(&segments, headers) => match locate(&mount.root, &["index.html".into()]) {
            Some((p, m)) => (p, m, true),
            None => return not_found(),
        },
        None => return not_found(),
    };
    let ct = content_type(&path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let cache = if !fallback && is_hashed_name(name) { "public, max-age=31536000, immutable" } else { "no-cache" };
    if !fallback
        && hit.is_none()
        && let Some(e) = mount.cache.fill(rest, &mount.root, &segments, &path, cache)
        && let Some(r) = serve_cached(&e, method, headers)
    {
        return r;
    }
    let compress = compressible(ct);

    // Pick the representation: precompressed sibling, on-the-fly compression, or the file itself.
    let mut enc = Enc::Identity;
    let mut file_path = path.clone();
    let mut file_md = md.clone();
    let want_range = headers.contains_key(header::RANGE);
    if compress && !want_range {
        for (e, ext) in [(Enc::Br, "br"), (Enc::Gzip, "gz")] {
            if accepts(headers, e.token()) {
                let mut sib = path.clone().into_os_string();
                sib.push(".");
                sib.push(ext);
                let sib = PathBuf::from(sib);
                if let Ok(m) = std::fs::metadata(&sib)
                    && m.is_file()
                {
                    enc = e;
                    file_path = sib;
                    file_md = m;
                    break;
                }
            }
        }
    }
    let on_the_fly =
        if compress && !want_range && enc == Enc::Identity && (COMPRESS_MIN..=COMPRESS_MAX).contains(&md.len()) {
            if accepts(headers, "br") {
                Some(Enc::Br)
            } else if accepts(headers, "gzip") {
                Some(Enc::Gzip)
            } else {
                None
            }
        } else {
            None
        };
    let tag = etag_for(&md, on_the_fly.unwrap_or(enc));
    let last_modified = md.modified().ok().map(httpdate::fmt_http_date);

    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, ct)
        .header(header::ETAG, &tag)
        .header(header::CACHE_CONTROL, cache)
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(lm) = &last_modified {
        b = b.header(header::LAST_MODIFIED, lm);
    }
    if compress {
        b = b.header(header::VARY, "Accept-Encoding");
    }

    // Conditional requests.
    let not_modified = match headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(inm) => etag_matches(inm, &tag),
        None => match (headers.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()), md.modified().ok()) {
            (Some(ims), Some(mtime)) => modified_not_after(mtime, ims),
            _ => false,
        },
    };
    if not_modified {
        return b.status(StatusCode::NOT_MODIFIED).body(empty()).unwrap_or_else(|_| not_found());
    }

    let head = method == Method::HEAD;
    if let Some(e) = on_the_fly {
        let Ok(data) = std::fs::read(&path) else { return not_found() };
        let Some(z) = compress_bytes(&data, e) else { return not_found() };
        b = b.header(header::CONTENT_ENCODING, e.token()).header(header::CONTENT_LENGTH, z.len());
        let body = if head { empty() } else { full(Bytes::from(z)) };
        return b.body(body).unwrap_or_else(|_| not_found());
    }
    if enc != Enc::Identity {
        b = b.header(header::CONTENT_ENCODING, enc.token());
    }

    let len = file_md.len();
    let mut start = 0u64;
    let mut end = len; // exclusive
    let mut status = StatusCode::OK;
    if let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        let if_range_ok = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
            None => true,
            Some(v) if v.starts_with('"') || v.starts_with("W/") => v == tag,
            Some(v) => last_modified.as_deref() == Some(v),
        };
        if if_range_ok {
            match parse_range(range, len) {
                RangeResult::One(s, e) => {
                    start = s;
                    end = e;
                    status = StatusCode::PARTIAL_CONTENT;
                    b = b.header(header::CONTENT_RANGE, format!("bytes {s}-{}/{len}", e - 1));
                }
                RangeResult::Unsatisfiable => {
                    return b
                        .status(StatusCode::RANGE_NOT_SATISFIABLE)
                        .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                        .body(empty())
                        .unwrap_or_else(|_| not_found());
                }
                RangeResult::Ignore => {}
            }
        }
    }
    b = b.status(status).header(header::CONTENT_LENGTH, end - start);
    if head {
        return b.body(empty()).unwrap_or_else(|_| not_found());
    }
    let body = if end - start <= INLINE_MAX {
        match read_range(&file_path, start, end) {
            Some(d) => full(Bytes::from(d)),
            None => return not_found(),
        }
    } else {
        match stream_range(&file_path, start, end) {
            Some(b) => b,
            None => return not_found(),
        }
    };
    b.body(body).unwrap_or_else(|_| not_found())
}

/// SPA fallback applies to paths that look like pages: no file extension in the last segment, or a client
/// that asks for HTML. A missing `app.js` still gets 404.
fn spa_eligible(segments: &[String], headers: &HeaderMap) -> bool {
    let last = segments.last().map(String::as_str).unwrap_or("");
    !last.contains('.')
        || headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

enum RangeResult {
    One(u64, u64),
    Unsatisfiable,
    Ignore,
}

fn parse_range(v: &str, len: u64) -> RangeResult {
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return RangeResult::Ignore };
    if spec.contains(',') {
        return RangeResult::Ignore; // multi-range: answer with the whole file
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeResult::Ignore };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else { return RangeResult::Ignore };
        if n == 0 || len == 0 {
            return RangeResult::Unsatisfiable;
        }
        return RangeResult::One(len.saturating_sub(n), len);
    }
    let Ok(s) = a.parse::<u64>() else { return RangeResult::Ignore };
    if s >= len {
        return RangeResult::Unsatisfiable;
    }
    let e = if b.is_empty() {
        len
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= s => (e + 1).min(len),
            Ok(_) => return RangeResult::Ignore,
            Err(_) => return RangeResult::Ignore,
        }
    };
    RangeResult::One(s, e)
}

fn read_range(path: &Path, start: u64, end: u64) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    if start > 0 {
        f.seek(SeekFrom::Start(start)).ok()?;
    }
    let mut buf = vec![0; (end - start) as usize];
    f.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn stream_range(path: &Path, start: u64, end: u64) -> Option<RespBody> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let f = std::fs::File::open(path).ok()?;
    let file = tokio::fs::File::from_std(f);
    let stream = futures_util::stream::unfold((file, start, false), move |(mut file, pos, seeked)| async move {
        if pos >= end {
            return None;
        }
        if !seeked && pos > 0 && file.seek(SeekFrom::Start(pos)).await.is_err() {
            return None;
        }
        let want = ((end - pos) as usize).min(64 * 1024);
        let mut buf = vec![0u8; want];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(buf))),
                    (file, pos + n as u64, true),
                ))
            }
            Err(e) => Some((Err(e), (file, end, true))),
        }
    });
    Some(http_body_util::StreamBody::new(stream).map_err(|e| Box::new(e) as crate::BoxError).boxed_unsync())
}

fn compress_bytes(data: &[u8], enc: Enc) -> Option<Vec<u8>> {
    match enc {
        Enc::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data).ok()?;
            e.finish().ok()
        }
        Enc::Br => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data).ok()?;
            }
            Some(out)
        }
        Enc::Identity => Some(data.to_vec()),
    }
}
