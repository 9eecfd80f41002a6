// WebDataset shards for curated clips (reference/video.md b.7).
//
// TarWriter: a POSIX.1-1988 ustar archive (POSIX.1-2001 pax extended header for long names).
//   - 512-byte headers: name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag
//     linkname[100] magic "ustar\0" version "00" uname[32] gname[32] devmajor[8] devminor[8]
//     prefix[155]; numbers in zero-padded octal, NUL-terminated; chksum = the sum of the header's
//     bytes with the chksum field taken as 8 spaces, written as 6 octal digits, NUL, space.
//   - Regular files only, mode 0644, uid/gid 0, uname/gname "", mtime fixed (default 0) so the
//     same samples give byte-identical shards; data padded with zeros to 512 bytes.
//   - A name over 100 bytes is split at a '/' into prefix (<= 155) + name (<= 100) when possible,
//     else written as a pax 'x' record "LEN path=NAME\n" before the entry (GNU tar, bsdtar and
//     Python's tarfile read both).
//   - close(): two zero blocks, then zeros up to a multiple of 10240 bytes (the 20-block record,
//     as GNU tar and Python write). The archive is written to path + ".partial" and renamed to
//     path by close(): a file under the final name is always a complete archive. Destroyed
//     without close(), the .partial file is removed.
//
// shard_bucket: b.7's directory of a clip:
//   "resolution_{lt_720|lt_1080|gt_1080}/aspect_ratio_{W}_{H}/frames_{a}_{b}"
//   - resolution by min(W,H): < 720 lt_720, 720..1079 lt_1080, >= 1080 gt_1080;
//   - aspect ratio r = w/h: (0,.65] 9_16, (.65,.88] 3_4, (.88,1.16] 1_1, (1.16,1.55] 4_3,
//     (1.55,10] 16_9; r > 10 (a strip panorama; b.7 has no bin) goes to 16_9, the widest bin;
//   - frames_{a}_{b}: the window [k*window, (k+1)*window - 1] holding `frames` (window 256, the
//     captioning window), e.g. 300 frames -> frames_256_511.
//
// ShardWriter: root/BUCKET/{video,metas}/part_PPPPPP/NNNNNN.tar. Per bucket, samples go to shard
//   NNNNNN = 000000, 000001, ... in order, samples_per_shard per shard (a new shard starts with
//   sample samples_per_shard * s); the video tar holds KEY.mp4 and the metas tar KEY.json, so
//   shard s of video/ and of metas/ hold the same keys. Part folder rule: shard s lives in
//   part_{s / shards_per_part} (default 1000 shards a part), shard numbers run on across parts
//   (part_000001 starts at 001000.tar). Keys must be non-empty and contain no '.', '/' or NUL
//   (WebDataset splits a member name at its first '.' after the last '/' into key and field)
//   and must be unique within a bucket.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace foundry::video {

class TarWriter {
 public:
  explicit TarWriter(const std::string& path, int64_t mtime = 0);  // throws naming the path
  ~TarWriter();                                                    // without close(): removes path.partial
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // A regular file `name` (relative, no NUL) holding `bytes`.
  void add(const std::string& name, const std::string& bytes);
  // End-of-archive blocks, record padding, rename path.partial -> path. Idempotent.
  void close();

  const std::string& path() const { return path_; }
  int64_t entries() const { return entries_; }

 private:
  void write_header(const std::string& name, int64_t size, char typeflag);
  void write_padded(const char* data, int64_t size);

  std::string path_, partial_;
  int64_t mtime_ = 0;
  std::ofstream out_;
  int64_t written_ = 0;
  int64_t entries_ = 0;
  bool closed_ = false;
};

std::string shard_bucket(int width, int height, int64_t frames, int frame_window = 256);

class ShardWriter {
 public:
  explicit ShardWriter(const std::string& root, int samples_per_shard = 100, int shards_per_part = 1000);
  ~ShardWriter();  // without close(): the open shards are abandoned (their .partial files removed)
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // One sample: KEY.mp4 into the bucket's current video shard, KEY.json into its metas shard.
  void add(const std::string& bucket, const std::string& key, const std::string& mp4_bytes,
           const std::string& json_text);
  // Closes every open shard (renaming it to its final name). Idempotent.
  void close();
  // Every shard started so far (final paths; video then metas for each shard, in order of
  // creation); the open ones exist under these names once close() has run.
  std::vector<std::string> shards() const { return shards_; }

 private:
  struct Bucket {
    int64_t samples = 0;
    std::unique_ptr<TarWriter> video, metas;
    std::set<std::string> keys;
  };
  std::string root_;
  int samples_per_shard_, shards_per_part_;
  std::map<std::string, Bucket> buckets_;
  std::vector<std::string> shards_;
};

}  // namespace foundry::video
