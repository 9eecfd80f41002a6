// The text of a libav* error code (av_strerror), for error messages of the video readers/writers.
#pragma once

extern "C" {
#include <libavutil/error.h>
}

#include <string>

namespace foundry::video {

inline std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

}  // namespace foundry::video
