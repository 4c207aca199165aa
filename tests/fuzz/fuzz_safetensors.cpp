// libFuzzer target: one .safetensors file, read the ways bitttt reads one.
//
// Input: the file itself; or, when it starts with '{', "JSON header NUL data section",
// from which the target builds the file (8-byte length + header + data), so that
// mutations of the header text keep the length prefix right.
//
// Per input: SafetensorsFile (header, tensor table, metadata), every tensor's first and
// last byte touched and, for small float tensors, converted to float through Checkpoint;
// and the same file as a calibration file (what `bitttt inspect` and `convert
// --calibration` do with one), with its statistics read back.
#include <algorithm>
#include <string>
#include <vector>

#include "bitttt/calibration.h"
#include "bitttt/dtype.h"
#include "bitttt/safetensors.h"
#include "fuzz_common.h"

namespace {

using namespace bitttt;

std::string build_file(std::string_view in) {
    if (in.empty() || in[0] != '{') return std::string(in);
    const fuzz::Split s = fuzz::split_at_nul(in);
    std::string out(8, '\0');
    std::uint64_t n = s.json.size();
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
    out += s.json;
    out += s.rest;
    return out;
}

volatile std::uint8_t g_sink;

void read_safetensors(const std::string& path) {
    const SafetensorsFile f(path);
    for (const TensorInfo& t : f.tensors()) {
        (void)t.numel();
        if (f.find(t.name) == nullptr) __builtin_trap();  // every listed tensor is findable
        if (t.nbytes() > 0) g_sink = f.data(t)[0] ^ f.data(t)[t.nbytes() - 1];
    }
    for (const auto& [k, v] : f.metadata()) g_sink = static_cast<std::uint8_t>(k.size() + v.size());

    const Checkpoint ck = Checkpoint::open(path);
    for (const Checkpoint::Entry& e : ck.tensors()) {
        if (!dtype_is_float_convertible(e.info->dtype) || e.info->numel() > (1 << 20)) continue;
        fuzz::expect_ok_or_error([&] {
            const std::vector<float> v = ck.read_f32(e);
            if (!v.empty()) g_sink = static_cast<std::uint8_t>(v.back() > 0);
        });
    }
}

void read_calibration(const std::string& path) {
    const CalibrationFile c(path);
    const SafetensorsFile st(path);
    for (const std::string& key : c.keys()) {
        // The weight whose input this key describes: "model.layers.3.mlp.gate_up" is read
        // by "model.layers.3.mlp.up_proj.weight" (and gate_proj).
        std::string layer = key;
        for (int i = 0; i < 2 && layer.rfind('.') != std::string::npos; ++i) layer.resize(layer.rfind('.'));
        std::string weight;
        for (const char* w : {"self_attn.q_proj", "self_attn.o_proj", "mlp.up_proj", "mlp.down_proj"}) {
            const std::string name = layer + "." + w + ".weight";
            if (calibration_key(name) == key) weight = name;
        }
        if (weight.empty()) continue;
        const TensorInfo* m = st.find(key + ".mean_sq");  // as `bitttt inspect` reads it
        const std::int64_t n = m->shape[0];
        for (const std::int64_t cols : {n, n + 1}) {
            fuzz::expect_ok_or_error([&] {
                if (const float* v = c.mean_sq(weight, cols)) g_sink = static_cast<std::uint8_t>(v[cols - 1] > 0);
                if (cols <= 512) {
                    std::vector<double> full;
                    (void)c.xtx(weight, cols, full);
                }
                std::vector<float> block;
                (void)c.xtx_block(weight, cols, cols / 2, std::min<std::int64_t>(cols, cols / 2 + 16), block);
                c.release(weight, cols);
            });
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz::input_file(build_file(fuzz::as_view(data, size)), "model.safetensors");
    fuzz::expect_ok_or_error([&] { read_safetensors(path); });
    fuzz::expect_ok_or_error([&] { read_calibration(path); });
    return 0;
}
