// A converted model in the tiles and the rows arrangement, 2bit and dense: the engine gives
// the same logits from all four files, maps the tiles in place and rearranges the rows
// (src/format/ternary_tiles.cpp, src/model/linear.cpp). Needs ../shared.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "bitttt/generate.h"
#include "bitttt/model.h"
#include "kernels/dispatch.h"
#include "test_util.h"

using namespace bitttt;

namespace {

// Logits of a few tokens one at a time, a batched pass, and a greedy continuation.
struct Outputs {
    std::vector<float> seq, batch;
    std::vector<std::int32_t> greedy;
};

Outputs run_model(Model& m) {
    const int vocab = m.config().vocab_size;
    const std::vector<std::int32_t> toks = {1, 403, 18, 250, 7, 99, 2, 311, 45, 12};
    Outputs o;
    for (int pos = 0; pos < static_cast<int>(toks.size()); ++pos) {
        const float* l = m.forward(toks[static_cast<std::size_t>(pos)], pos);
        o.seq.insert(o.seq.end(), l, l + vocab);
    }
    o.batch.resize(toks.size() * static_cast<std::size_t>(vocab));
    m.forward_batch(toks.data(), static_cast<int>(toks.size()), 0, o.batch.data());
    GenerateOptions g;
    g.max_new_tokens = 12;
    g.temperature = 0.0f;
    o.greedy = generate(m, {1, 403, 18}, g).ids;
    return o;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("tiles: stories260K in tiles and rows, 2bit and dense: the same logits, tiles used in place",
          "[tiles][engine][shared]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf/model.safetensors");
    const std::string model = bitttt::test::shared_dir() + "/models/stories260K-hf";
    bitttt::test::TempDir dir;
    struct File {
        Arrangement arrangement;
        Packing packing;
        std::string path;
    };
    std::vector<File> files;
    for (Arrangement a : {Arrangement::Tiles, Arrangement::Rows}) {
        for (Packing p : {Packing::TwoBit, Packing::Dense}) {
            ConvertOptions o;
            o.input = model;
            o.output = dir.file(std::string(arrangement_name(a)) + "-" + packing_name(p) + ".btt");
            o.bases = 3;
            o.packing = p;
            o.arrangement = a;
            o.threads = 2;
            const ConvertReport rep = convert(o);
            CHECK(rep.arrangement == a);
            files.push_back({a, p, o.output});
        }
    }
    const bool lut = kernels::active_design() == kernels::TernaryDesign::Lut;
    if (!lut) {
        WARN("the active ternary design is " << kernels::design_name(kernels::active_design())
                                             << ": files in tiles are rearranged at load, rows used in place");
    }
    std::vector<Outputs> outs;
    for (const File& f : files) {
        INFO(f.path);
        int linear = 0;
        {
            const BttFile btt(f.path);
            CHECK(btt.version() == (f.arrangement == Arrangement::Tiles ? 3u : 1u));
            for (const BttTensor& t : btt.tensors()) {
                if (t.encoding != Encoding::Ternary) continue;
                ++linear;
                CHECK(t.layout.arrangement == f.arrangement);
                CHECK(t.layout.packing == f.packing);
                CHECK(t.size == t.layout.total_bytes());
            }
        }
        CHECK(linear == 5 * 7);  // q/k/v/o/gate/up/down of 5 layers (embeddings int8)
        auto m = Model::load(f.path, LoadOptions{0, 1, 64});
        // Tiles are what the LUT design reads (in place), rows what the maddubs one reads.
        const bool in_place = (f.arrangement == Arrangement::Tiles) == lut;
        CHECK(m->rearranged_tensors() == (in_place ? 0 : linear));
        outs.push_back(run_model(*m));
    }
    REQUIRE(outs.size() == 4);
    for (std::size_t i = 1; i < outs.size(); ++i) {
        INFO(files[0].path << " vs " << files[i].path);
        CHECK(same_bits(outs[i].seq, outs[0].seq));
        CHECK(same_bits(outs[i].batch, outs[0].batch));
        CHECK(outs[i].greedy == outs[0].greedy);
    }
    CHECK(same_bits(outs[0].seq, outs[0].batch));
    CHECK(outs[0].greedy.size() == 12);
}
