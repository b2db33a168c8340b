//! The card's EEPROM kept in a file (`[device] eeprom = "FILE"`, `--eeprom FILE`), so
//! what a guest programs (`ethtool -E`) survives a restart of nic-emu.
//!
//! The file is the 64 words as 128 bytes, little-endian, word 0 first: the layout of
//! `ethtool -e eth0 raw on`. At start it is checked (size, then the 0xBABA checksum
//! every driver verifies) and a bad image is an error naming the file and the problem;
//! a missing file is created with the card's default image. Every change the guest makes
//! is written back atomically: a temporary file in the same directory, fsync, rename
//! over the old one, fsync of the directory. A crash leaves the old image or the new
//! one, never a torn one. nic-emu needs to create and rename files in that directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::device::eeprom::{checksum_ok, checksum_word, EEPROM_CHECKSUM, EEPROM_WORDS};
use crate::device::EepromStore;

/// Bytes in an image file.
pub const EEPROM_FILE_BYTES: usize = 2 * EEPROM_WORDS;

/// An EEPROM image file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EepromFileError {
    /// Reading (or creating) it failed.
    #[error("EEPROM image {path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// It is not 128 bytes long.
    #[error("EEPROM image {path}: {len} bytes, expected {EEPROM_FILE_BYTES} (64 little-endian 16-bit words)")]
    Size {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// Its words do not sum to 0xBABA: drivers reject such an EEPROM.
    #[error("EEPROM image {path}: checksum: the 64 words sum to {sum:#06x}, expected {EEPROM_CHECKSUM:#06x} (word 0x3F would have to be {fix:#06x})")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// What they sum to.
        sum: u16,
        /// The checksum word that would make it right.
        fix: u16,
    },
}

/// An EEPROM image file, the device's [`EepromStore`].
#[derive(Debug)]
pub struct EepromFile {
    path: PathBuf,
}

impl EepromFile {
    /// Load the image at `path` (checked), or create the file with `default` when there
    /// is none. Returns the store and the words to start with.
    pub fn open(
        path: &Path,
        default: &[u16; EEPROM_WORDS],
    ) -> Result<(Self, [u16; EEPROM_WORDS]), EepromFileError> {
        let file = Self {
            path: path.to_path_buf(),
        };
        let io = |what| {
            move |source| EepromFileError::Io {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let len = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                file.write_atomic(default).map_err(io("cannot create it"))?;
                log::info!(
                    "eeprom: created {} with the card's default image",
                    path.display()
                );
                return Ok((file, *default));
            }
            Err(e) => return Err(io("cannot read it")(e)),
        };
        if len != EEPROM_FILE_BYTES as u64 {
            return Err(EepromFileError::Size {
                path: path.to_path_buf(),
                len,
            });
        }
        let bytes = fs::read(path).map_err(io("cannot read it"))?;
        let words = parse(&bytes).ok_or(EepromFileError::Size {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
        })?;
        if !checksum_ok(&words) {
            return Err(EepromFileError::Checksum {
                path: path.to_path_buf(),
                sum: words.iter().fold(0u16, |a, &w| a.wrapping_add(w)),
                fix: checksum_word(&words),
            });
        }
        Ok((file, words))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replace the file's contents with `words`: temporary file, fsync, rename, fsync of
    /// the directory.
    fn write_atomic(&self, words: &[u16; EEPROM_WORDS]) -> std::io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "eeprom".into());
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&to_bytes(words))?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            fs::File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

impl EepromStore for EepromFile {
    fn save(&self, words: &[u16; EEPROM_WORDS]) -> std::io::Result<()> {
        self.write_atomic(words)
    }
}

/// The words of a 128-byte image.
pub fn parse(bytes: &[u8]) -> Option<[u16; EEPROM_WORDS]> {
    if bytes.len() != EEPROM_FILE_BYTES {
        return None;
    }
    let mut words = [0u16; EEPROM_WORDS];
    for (w, b) in words.iter_mut().zip(bytes.chunks_exact(2)) {
        *w = u16::from_le_bytes([b[0], b[1]]);
    }
    Some(words)
}

/// The 128 bytes of an image.
pub fn to_bytes(words: &[u16; EEPROM_WORDS]) -> [u8; EEPROM_FILE_BYTES] {
    let mut b = [0u8; EEPROM_FILE_BYTES];
    for (chunk, w) in b.chunks_exact_mut(2).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::eeprom::default_image;
    use crate::device::Model;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nic-emu-eeprom-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn image() -> [u16; EEPROM_WORDS] {
        default_image([0x52, 0x54, 0, 1, 2, 3], Model::I82540Em.eeprom_identity())
    }

    #[test]
    fn created_when_missing_then_loaded_and_saved_atomically() {
        let d = dir("create");
        let p = d.join("card.eeprom");
        let (f, words) = EepromFile::open(&p, &image()).unwrap();
        assert_eq!(words, image());
        assert_eq!(fs::read(&p).unwrap(), to_bytes(&image()));
        let mut changed = image();
        changed[0x30] = 0xBEEF;
        changed[0x3F] = checksum_word(&changed);
        f.save(&changed).unwrap();
        let (_, again) = EepromFile::open(&p, &image()).unwrap();
        assert_eq!(again, changed);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_images_are_errors_that_name_the_file_and_the_problem() {
        let d = dir("bad");
        let p = d.join("short.bin");
        fs::write(&p, [0u8; 100]).unwrap();
        let e = EepromFile::open(&p, &image()).unwrap_err().to_string();
        assert!(
            e.contains("short.bin") && e.contains("100 bytes") && e.contains("128"),
            "{e}"
        );

        let p = d.join("sum.bin");
        let mut words = image();
        words[0x10] ^= 1;
        fs::write(&p, to_bytes(&words)).unwrap();
        let e = EepromFile::open(&p, &image()).unwrap_err().to_string();
        assert!(
            e.contains("sum.bin") && e.contains("checksum") && e.contains("0xbaba"),
            "{e}"
        );

        let p = d.join("no-such-dir").join("x.bin");
        let e = EepromFile::open(&p, &image()).unwrap_err().to_string();
        assert!(e.contains("x.bin") && e.contains("cannot create"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
