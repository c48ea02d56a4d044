// Clisonix — a whole file as text, for the commands that read data and label files.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/result.h"

namespace clisonix {

// The file's bytes; not_found (naming the path, also as the field) when it cannot be read.
inline result<std::string> read_file_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return make_error("not_found", "cannot read " + p.string(), p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace clisonix
