// bitttt repack: the ternary tensors of a .btt in another arrangement or packing (see
// include/bitttt/repack.h). Every other byte is copied; the header keeps its model,
// tokenizer and conversion record, updated where the layout changed.
#include "bitttt/repack.h"

#include <chrono>
#include <filesystem>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/error.h"
#include "bitttt/model_config.h"
#include "util/sysinfo.h"
#include "util/thread_pool.h"

namespace bitttt {

RepackReport repack(const RepackOptions& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(opt.output, ec) && fs::equivalent(opt.input, opt.output, ec)) {
        throw UsageError("output '" + opt.output + "' is the input file; choose another -o");
    }
    const BttFile in(opt.input);
    RepackReport rep;
    rep.input = opt.input;
    rep.output = opt.output;
    rep.input_bytes = in.file_size();

    nlohmann::json header = in.header();
    header.erase("tensors");
    header["created_by"] = "bitttt " + opt.tool_version;
    if (header.contains("conversion") && header["conversion"].is_object()) {
        header["conversion"]["arrangement"] = arrangement_name(opt.arrangement);
        if (opt.packing) header["conversion"]["packing"] = packing_name(*opt.packing);
    }
    ThreadPool pool(opt.threads > 0 ? opt.threads : physical_cores());
    BttWriter writer(opt.output, header, in.tensors().size());
    std::vector<std::uint8_t> buf;
    for (const BttTensor& t : in.tensors()) {
        ++rep.tensors;
        BttTensor out = t;
        if (t.encoding == Encoding::Ternary) {
            // As convert does: the embedding table is read a row at a time and keeps rows.
            out.layout.arrangement =
                tensor_role(t.name) == TensorRole::Embedding ? Arrangement::Rows : opt.arrangement;
            if (opt.packing) out.layout.packing = *opt.packing;
            try {
                out.layout.validate();
            } catch (const UsageError& e) {
                throw UsageError(opt.input + ": tensor '" + t.name + "': " + e.what());
            }
        }
        const bool same = t.encoding != Encoding::Ternary || (out.layout.arrangement == t.layout.arrangement &&
                                                              out.layout.packing == t.layout.packing);
        if (same) {
            writer.add(out, in.data(t), t.size);
            continue;
        }
        buf.resize(out.layout.total_bytes());
        // A tiles target is filled tile by tile, a rows one 32 rows at a time: either way
        // the ranges are disjoint and the bytes the same for any thread count.
        const std::int64_t groups = (t.layout.rows + kTileRows - 1) / kTileRows;
        pool.parallel_for(groups, 8, [&](std::int64_t g0, std::int64_t g1) {
            rearrange_ternary(t.layout, in.data(t), out.layout, buf.data(), g0, g1);
        });
        writer.add(out, buf.data(), buf.size());
        in.release(t);
        ++rep.rewritten;
    }
    rep.output_bytes = writer.finish();
    rep.version = btt_version_needed(writer.tensors());
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
}

}  // namespace bitttt
