#include "util/sysinfo.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace bitttt {

std::uint64_t peak_rss_bytes() {
    struct rusage ru {};
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return static_cast<std::uint64_t>(ru.ru_maxrss) * 1024u;  // Linux reports kB
}

std::uint64_t current_rss_bytes() {
    std::ifstream f("/proc/self/statm");
    std::uint64_t size = 0, resident = 0;
    if (!(f >> size >> resident)) return 0;
    return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

int physical_cores() {
    std::ifstream f("/proc/cpuinfo");
    std::set<std::pair<int, int>> cores;  // (physical id, core id)
    std::string line;
    int phys = 0;
    while (std::getline(f, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
        int value = 0;
        try {
            value = std::stoi(line.substr(colon + 1));
        } catch (...) {
            continue;
        }
        if (key == "physical id") phys = value;
        if (key == "core id") cores.insert({phys, value});
    }
    int hw = static_cast<int>(std::thread::hardware_concurrency());
    int n = cores.empty() ? hw : static_cast<int>(cores.size());
    if (hw > 0 && n > hw) n = hw;  // containers may show more cores than we may use
    return n > 0 ? n : 1;
}

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

}  // namespace bitttt
