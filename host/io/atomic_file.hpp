// Small files written whole (config.toml, summary.json, the FFS checkpoint): atomically, so that a
// reader, or a run killed while writing, sees the old file or the new one, never a part.
#pragma once

#include <filesystem>
#include <string_view>

namespace sgdwalk {

/// Writes `bytes` to `path` atomically: to `path`.tmp, synced to disk, then renamed over `path`.
/// A failure throws std::runtime_error naming the file and the system's reason (No space left on
/// device) and removes the .tmp, which would hold disk space a checkpoint needs.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

/// Makes a rename in the directory of `path` durable (fsync of the directory), before what the
/// renamed file replaces (a checkpoint) is removed. Best effort: a file system that cannot sync a
/// directory keeps the rename anyway once it reaches the disk.
void sync_directory_of(const std::filesystem::path& path);

/// fsync(fd), where a file system that does not support it (EINVAL, ENOTSUP) counts as synced:
/// its data reach the disk in its own time, and failing there would fail every run.
bool sync_file(int fd);

/// sync_file() of the file at `path` (written and closed by someone else: HDF5, a stream); false
/// with errno set when it cannot be opened or synced.
bool sync_file_at(const std::filesystem::path& path);

}  // namespace sgdwalk
