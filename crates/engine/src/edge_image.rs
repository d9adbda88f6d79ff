//! The edge's image, built from berth's own executable: a `FROM scratch` image holding the binary
//! as `/berth`, the shared libraries the running process has mapped (each at its path, plus the
//! dynamic loader at the path the binary names) and the host's CA bundle when there is one. Tagged
//! `berth/edge:<first 12 hex digits of the binary's sha256>`: the same binary gives the same tag,
//! so a deploy with an unchanged berth neither rebuilds the image nor restarts the edge.
//!
//! Built through the Engine API from a tar context (no registry, no Docker Hub). The image only
//! exists on the node berth talks to; multi-node targets must distribute it (see `docs/deploy.md`).

use crate::{Engine, EngineError};
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Repository of the edge image.
pub const EDGE_REPOSITORY: &str = "berth/edge";
/// Environment variable naming another executable to build the edge image from (default: the
/// running berth, `/proc/self/exe`).
pub const EDGE_BINARY_ENV: &str = "BERTH_EDGE_BINARY";
/// CA bundle copied into the image when the host has it (for ACME directories over HTTPS).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The executable the edge image is built from.
pub fn edge_binary() -> PathBuf {
    std::env::var_os(EDGE_BINARY_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

/// `berth/edge:<sha256 of the binary, 12 hex digits>`.
pub fn edge_image_tag(binary: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(binary)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    Ok(format!("{EDGE_REPOSITORY}:{hex}"))
}

/// Shared objects mapped into this process (`/proc/self/maps`), by path.
fn mapped_libraries() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let set: BTreeSet<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && p.contains(".so"))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    set.into_iter().collect()
}

/// The `PT_INTERP` of a 64-bit little-endian ELF file (the dynamic loader it names), if any.
fn elf_interpreter(binary: &Path) -> Option<PathBuf> {
    let mut f = std::fs::File::open(binary).ok()?;
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh).ok()?;
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(&eh, 32), u16_at(&eh, 54), u16_at(&eh, 56));
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        f.seek(std::io::SeekFrom::Start(phoff + i * phentsize)).ok()?;
        f.read_exact(&mut ph).ok()?;
        if u32::from_le_bytes(ph[..4].try_into().unwrap()) == 3 {
            let (off, size) = (u64_at(&ph, 8), u64_at(&ph, 32));
            let mut s = vec![0u8; size as usize];
            f.seek(std::io::SeekFrom::Start(off)).ok()?;
            f.read_exact(&mut s).ok()?;
            let s = String::from_utf8(s).ok()?;
            return Some(PathBuf::from(s.trim_end_matches('\0')));
        }
    }
    None
}

/// One file of the image: its path in the image and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Absolute path inside the image.
    pub path: String,
    /// File on this machine (symlinks followed).
    pub source: PathBuf,
    /// Mode bits.
    pub mode: u32,
}

/// The files of the edge image for `binary`: `/berth`, the mapped shared libraries, the loader at
/// the path the binary names, the CA bundle.
pub fn edge_image_files(binary: &Path) -> Vec<ImageFile> {
    let mut files = vec![ImageFile { path: "/berth".into(), source: binary.to_path_buf(), mode: 0o755 }];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut add = |path: &Path, source: &Path, mode: u32, files: &mut Vec<ImageFile>| {
        let p = path.to_string_lossy().into_owned();
        if seen.insert(p.clone()) {
            files.push(ImageFile { path: p, source: source.to_path_buf(), mode });
        }
    };
    for lib in mapped_libraries() {
        add(&lib, &lib, 0o755, &mut files);
    }
    if let Some(interp) = elf_interpreter(binary) {
        add(&interp, &interp, 0o755, &mut files);
    }
    if Path::new(CA_BUNDLE).is_file() {
        add(Path::new(CA_BUNDLE), Path::new(CA_BUNDLE), 0o644, &mut files);
    }
    files
}

fn tar_header(name: &str, typeflag: u8, mode: u32, size: u64) -> [u8; 512] {
    fn octal(field: &mut [u8], value: u64) {
        let s = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn tar_entry(
    out: &mut impl Write,
    name: &str,
    typeflag: u8,
    mode: u32,
    data: &mut dyn Read,
    size: u64,
) -> std::io::Result<()> {
    if name.len() > 100 {
        let mut long = name.as_bytes().to_vec();
        long.push(0);
        out.write_all(&tar_header("././@LongLink", b'L', 0o644, long.len() as u64))?;
        out.write_all(&long)?;
        out.write_all(&vec![0u8; (512 - long.len() % 512) % 512])?;
    }
    out.write_all(&tar_header(&name[..name.len().min(100)], typeflag, mode, size))?;
    let copied = std::io::copy(&mut data.take(size), out)?;
    std::io::copy(&mut std::io::repeat(0).take(size - copied), out)?;
    out.write_all(&vec![0u8; ((512 - size % 512) % 512) as usize])
}

/// Writes the build context: `Dockerfile` and `rootfs/…` with every file and its directories.
pub fn write_context(out: &mut impl Write, files: &[ImageFile], label: &str) -> std::io::Result<()> {
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nLABEL io.berth.edge.binary={label}\nENTRYPOINT [\"/berth\"]\nCMD [\"edge\", \"serve\", \"/etc/berth/edge.json\"]\n"
    );
    tar_entry(out, "Dockerfile", b'0', 0o644, &mut dockerfile.as_bytes(), dockerfile.len() as u64)?;
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for f in files {
        let mut p = Path::new(&f.path).parent();
        while let Some(d) = p.filter(|d| d != &Path::new("/")) {
            dirs.insert(d.to_string_lossy().into_owned());
            p = d.parent();
        }
    }
    tar_entry(out, "rootfs/", b'5', 0o755, &mut std::io::empty(), 0)?;
    for d in &dirs {
        tar_entry(out, &format!("rootfs{d}/"), b'5', 0o755, &mut std::io::empty(), 0)?;
    }
    for f in files {
        let mut file = std::fs::File::open(&f.source)?;
        let size = file.metadata()?.len();
        tar_entry(out, &format!("rootfs{}", f.path), b'0', f.mode, &mut file, size)?;
    }
    out.write_all(&[0u8; 1024])
}

impl Engine {
    /// Makes sure the edge image `tag` exists, building it from `binary` when it does not.
    /// Returns true when it was built.
    pub async fn ensure_edge_image(&self, tag: &str, binary: &Path) -> Result<bool, EngineError> {
        if self.docker().inspect_image(tag).await.is_ok() {
            return Ok(false);
        }
        let refused = |message: String| EngineError::Refused {
            message: format!("cannot build the edge image {tag}: {message}"),
            hint: Some(format!("set {EDGE_BINARY_ENV} to a berth executable to build the edge from")),
        };
        let binary = binary.to_path_buf();
        let label = tag.rsplit(':').next().unwrap_or_default().to_string();
        // The context (tens of MB) goes through an unlinked temp file, streamed to the engine.
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let path = std::env::temp_dir().join(format!("berth-edge-{}-{nanos}.tar", std::process::id()));
            let mut file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
            let _ = std::fs::remove_file(&path);
            let mut w = std::io::BufWriter::with_capacity(256 * 1024, &mut file);
            write_context(&mut w, &edge_image_files(&binary), &label)?;
            w.flush()?;
            drop(w);
            file.rewind()?;
            Ok(file)
        })
        .await
        .map_err(|e| refused(e.to_string()))?
        .map_err(|e| refused(e.to_string()))?;
        let chunks = crate::build::file_chunks(file);
        let options = BuildImageOptions {
            t: Some(tag.to_string()),
            rm: true,
            forcerm: true,
            labels: Some([("io.berth.edge".to_string(), "image".to_string())].into()),
            ..Default::default()
        };
        let mut stream = self.docker().build_image(options, None, Some(bollard::body_try_stream(chunks)));
        let mut tail = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream {
                        tail.push(s.trim_end().to_string());
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(refused(format!("{} ({})", error.trim_end(), tail.join(" | "))));
                }
                Err(source) => return Err(EngineError::Api { call: "build edge image", source }),
            }
        }
        if self.docker().inspect_image(tag).await.is_err() {
            return Err(refused(format!("the builder finished without producing it ({})", tail.join(" | "))));
        }
        self.remove_unused_edge_images(tag).await;
        Ok(true)
    }

    /// Removes edge images berth built from other executables that no container uses any more (each
    /// holds a copy of berth: hundreds of MB for a debug build). The engine refuses to remove an image a
    /// container still uses (the running edge, Swarm's kept task history); those stay. Best effort.
    async fn remove_unused_edge_images(&self, keep: &str) {
        let filters = std::collections::HashMap::from([("label".to_string(), vec!["io.berth.edge=image".to_string()])]);
        let options = bollard::query_parameters::ListImagesOptions { filters: Some(filters), ..Default::default() };
        let Ok(images) = self.docker().list_images(Some(options)).await else { return };
        let prefix = format!("{EDGE_REPOSITORY}:");
        for tag in images.iter().flat_map(|i| i.repo_tags.iter()) {
            if tag != keep && tag.starts_with(&prefix) {
                let _ =
                    self.docker().remove_image(tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_the_binary_hash_and_stable() {
        let dir = std::env::temp_dir().join(format!("berth-edge-tag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, b"one").unwrap();
        std::fs::write(&b, b"one").unwrap();
        let ta = edge_image_tag(&a).unwrap();
        assert_eq!(ta, "berth/edge:7692c3ad3540");
        assert_eq!(ta, edge_image_tag(&b).unwrap());
        std::fs::write(&b, b"two").unwrap();
        assert_ne!(ta, edge_image_tag(&b).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn image_files_include_the_loader_and_libc_of_this_process() {
        let files = edge_image_files(Path::new("/proc/self/exe"));
        assert_eq!(files[0].path, "/berth");
        let interp = elf_interpreter(Path::new("/proc/self/exe"));
        if let Some(i) = interp {
            assert!(files.iter().any(|f| Path::new(&f.path) == i), "loader {} missing: {files:?}", i.display());
            assert!(files.iter().any(|f| f.path.contains("libc.so")), "libc missing: {files:?}");
        }
    }

    #[test]
    fn context_is_a_valid_tar() {
        let files = vec![ImageFile { path: "/etc/hostname".into(), source: "/etc/hostname".into(), mode: 0o644 }];
        let mut out = Vec::new();
        write_context(&mut out, &files, "x").unwrap();
        assert_eq!(out.len() % 512, 0);
        assert_eq!(&out[257..262], b"ustar");
        let names: Vec<String> = out
            .chunks(512)
            .filter(|b| &b[257..262] == b"ustar")
            .map(|b| String::from_utf8_lossy(&b[..100]).trim_end_matches('\0').to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "rootfs/", "rootfs/etc/", "rootfs/etc/hostname"]);
    }
}
