// libFuzzer target: config.json.
//
// Input: the file. LlamaConfig::load reads and parses it as `bitttt convert` and `run`
// do; a config that loads must then survive what the converter asks of it: the
// normalised JSON of the .btt header must load back to the same config (a documented
// round trip), and the tensor list and parameter count must be computable.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bitttt/model_config.h"
#include "fuzz_common.h"

namespace {

using namespace bitttt;

volatile std::int64_t g_sink;

void check(const std::string& path) {
    const LlamaConfig c = LlamaConfig::load(path);
    const nlohmann::json j = c.to_json();
    const LlamaConfig back = LlamaConfig::from_json(j, path + " (normalised)");
    if (back.to_json() != j) {
        std::fprintf(stderr, "config round trip differs:\n%s\n%s\n", j.dump().c_str(), back.to_json().dump().c_str());
        std::abort();
    }
    g_sink = c.parameter_count();
    g_sink = static_cast<std::int64_t>(c.required_tensors().size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz::input_file(fuzz::as_view(data, size), "config.json");
    fuzz::expect_ok_or_error([&] { check(path); });
    return 0;
}
