// Benchmarks of the core's hot paths: field merges (issue 2 asks for at least 5 million a second
// on one core) and the record codec, each beside a baseline measured in the same run (copying the
// record, memcpy of the encoded bytes) so the figures can be read as ratios. See
// docs/BENCHMARKS.md for the commands and the last recorded figures.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/codec.h"
#include "core/merge.h"
#include "core/policy.h"
#include "core/record.h"
#include "core/version_vector.h"
#include "lockstep/value.h"

namespace lockstep::core {
namespace {

constexpr int kFieldsPerRecord = 10;  // `_exists` and nine data fields
// Merges run on batches of fresh copies of the local record, refilled with the timer paused once
// per batch: a merge changes its local record, and PauseTiming costs far too much to pay per merge.
constexpr size_t kBatch = 512;
constexpr uint64_t kMillis = 1'700'000'000'000;

NodeId Node(uint8_t tag) {
  NodeId node;
  node.bytes.fill(tag);
  return node;
}

const NodeId kNodeA = Node(0xa1);
const NodeId kNodeB = Node(0xb2);
const NodeId kNodeC = Node(0xc3);

// The nine data fields of a typical row: ints, ~20-byte texts, floats and a null, in name order
// after `_exists`. `generation` varies the values so that rewritten fields really differ.
std::vector<std::pair<std::string, Value>> TypicalValues(int generation) {
  const std::string suffix = std::to_string(generation);
  return {
      {"age", Value::Int(37 + generation)},
      {"balance", Value::Float(1234.5 + generation)},
      {"city", Value::Text("Clermont-Ferrand #" + suffix)},
      {"email", Value::Text("ada.lovelace@example" + suffix)},
      {"id", Value::Int(4'200'042)},
      {"name", Value::Text("Ada King, Countess " + suffix)},
      {"nickname", Value::Null()},
      {"score", Value::Float(0.875 * (generation + 1))},
      {"visits", Value::Int(1'000 * (generation + 1))},
  };
}

// Field i of the record is written with dots[i] at hlcs[i]; `_exists` is field 0.
Record MakeRecord(const std::vector<Dot>& dots, const std::vector<uint64_t>& hlc_millis,
                  int generation, const VersionVector& vv) {
  Record record("users/4200042");
  record.FindOrInsert(kExistsField).versions = {
      Version{Value::Int(1), dots[0], Hlc::Make(hlc_millis[0], 0)}};
  const auto values = TypicalValues(generation);
  for (int i = 1; i < kFieldsPerRecord; ++i) {
    record.FindOrInsert(values[i - 1].first).versions = {
        Version{values[i - 1].second, dots[i], Hlc::Make(hlc_millis[i], 0)}};
  }
  record.mutable_vv() = vv;
  return record;
}

// Dots node:first, node:first+1, ... and hlcs kMillis+offset, kMillis+offset+1, ...
std::vector<Dot> Dots(const NodeId& node, uint64_t first) {
  std::vector<Dot> dots;
  for (int i = 0; i < kFieldsPerRecord; ++i) dots.push_back(Dot{node, first + i});
  return dots;
}
std::vector<uint64_t> Millis(uint64_t offset) {
  std::vector<uint64_t> millis;
  for (int i = 0; i < kFieldsPerRecord; ++i) millis.push_back(kMillis + offset + i);
  return millis;
}

// The local record: its fields written over time by three nodes; vv {A:5, B:3, C:4}.
Record LocalRecord() {
  const std::vector<Dot> dots = {{kNodeA, 5}, {kNodeA, 1}, {kNodeB, 1}, {kNodeC, 1}, {kNodeA, 2},
                                 {kNodeB, 2}, {kNodeC, 2}, {kNodeA, 3}, {kNodeC, 3}, {kNodeC, 4}};
  const std::vector<uint64_t> millis = {100, 10, 11, 12, 20, 21, 22, 30, 31, 40};
  std::vector<uint64_t> hlcs;
  for (uint64_t m : millis) hlcs.push_back(kMillis + m);
  return MakeRecord(dots, hlcs, 0, VersionVector({{kNodeA, 5}, {kNodeB, 3}, {kNodeC, 4}}));
}

// The effects a case's merge must have: changed fields within [min_changed, max_changed], and
// exactly `conflicts` conflicts.
struct MergeCase {
  Record local;
  Record incoming;
  size_t min_changed;
  size_t max_changed;
  size_t conflicts;
};

MergeCase Identical() {
  Record local = LocalRecord();
  Record incoming = local;
  return {std::move(local), std::move(incoming), 0, 0, 0};
}

// Node A rewrote every field after seeing everything local has.
MergeCase TheirsNewer() {
  Record incoming = MakeRecord(Dots(kNodeA, 6), Millis(1000), 1,
                               VersionVector({{kNodeA, 15}, {kNodeB, 3}, {kNodeC, 4}}));
  return {LocalRecord(), std::move(incoming), kFieldsPerRecord, kFieldsPerRecord, 0};
}

// Local node A and remote node B each rewrote every field without seeing the other's writes; the
// newer hlc alternates between the sides, so half the fields are won by each. Whether a field
// that keeps our winner counts as changed depends on whether the merge keeps the loser as a
// sibling, hence the range of changed fields.
MergeCase Concurrent() {
  std::vector<uint64_t> ours = Millis(1000);
  std::vector<uint64_t> theirs = Millis(1000);
  for (int i = 0; i < kFieldsPerRecord; ++i) (i % 2 == 0 ? theirs : ours)[i] += 500;
  Record local =
      MakeRecord(Dots(kNodeA, 6), ours, 1, VersionVector({{kNodeA, 15}, {kNodeB, 3}, {kNodeC, 4}}));
  Record incoming = MakeRecord(Dots(kNodeB, 4), theirs, 2,
                               VersionVector({{kNodeA, 5}, {kNodeB, 13}, {kNodeC, 4}}));
  // Every field is concurrent, but `_exists` (1), `id` and `nickname` (NULL) hold the same value
  // on both sides: siblings that lose nothing are not a conflict, so 7 of the 10 report one.
  return {std::move(local), std::move(incoming), kFieldsPerRecord / 2, kFieldsPerRecord,
          kFieldsPerRecord - 3};
}

// Node B updated `balance` and `visits`, having seen everything local has.
MergeCase TwoChanged() {
  Record local = LocalRecord();
  Record incoming = local;
  const auto values = TypicalValues(1);
  Field& balance = incoming.FindOrInsert("balance");
  balance.versions = {Version{values[1].second, Dot{kNodeB, 4}, Hlc::Make(kMillis + 1000, 0)}};
  Field& visits = incoming.FindOrInsert("visits");
  visits.versions = {Version{values[8].second, Dot{kNodeB, 5}, Hlc::Make(kMillis + 1001, 0)}};
  incoming.mutable_vv().Advance(kNodeB, 5);
  return {std::move(local), std::move(incoming), 2, 2, 0};
}

// One iteration is one MergeInto of a 10-field record: 10 field merges.
void RunMerge(benchmark::State& state, const MergeCase& c) {
  const MergePolicy policy;
  // The case must do what its name says, or its figure means nothing.
  Record check = c.local;
  const MergeEffects effects = MergeInto(check, c.incoming, policy);
  if (effects.changed_fields.size() < c.min_changed ||
      effects.changed_fields.size() > c.max_changed || effects.conflicts.size() != c.conflicts) {
    state.SkipWithError("merge case does not produce the expected effects");
    return;
  }
  if (!DecodeRecord(EncodeRecord(check)).has_value()) {
    state.SkipWithError("merged record breaks the record invariants");
    return;
  }

  std::vector<Record> locals(kBatch, c.local);
  size_t next = 0;
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      for (Record& local : locals) local = c.local;
      next = 0;
      state.ResumeTiming();
    }
    MergeEffects result = MergeInto(locals[next++], c.incoming, policy);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * kFieldsPerRecord);
}

void BM_FieldMerge_Identical(benchmark::State& state) { RunMerge(state, Identical()); }
void BM_FieldMerge_TheirsNewer(benchmark::State& state) { RunMerge(state, TheirsNewer()); }
void BM_FieldMerge_Concurrent(benchmark::State& state) { RunMerge(state, Concurrent()); }
void BM_FieldMerge_TwoOfTenChanged(benchmark::State& state) { RunMerge(state, TwoChanged()); }
BENCHMARK(BM_FieldMerge_Identical);
BENCHMARK(BM_FieldMerge_TheirsNewer);
BENCHMARK(BM_FieldMerge_Concurrent);
BENCHMARK(BM_FieldMerge_TwoOfTenChanged);

// Baseline for the merges: copy-constructing the same local record, as Merge() (the pure form)
// does before merging. items are the 10 fields copied, comparable with the merges' items.
void BM_RecordCopy_Typical(benchmark::State& state) {
  const Record local = LocalRecord();
  for (auto _ : state) {
    Record copy = local;
    benchmark::DoNotOptimize(copy);
  }
  state.SetItemsProcessed(state.iterations() * kFieldsPerRecord);
}
BENCHMARK(BM_RecordCopy_Typical);

Record TypicalRecord() { return LocalRecord(); }

// `_exists`, a short text and a 64 KiB blob of varied bytes.
Record BlobRecord() {
  std::string bytes(64 << 10, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + 7) & 0xff);
  Record record("files/photo-0001.jpg");
  const Hlc hlc = Hlc::Make(kMillis, 0);
  record.FindOrInsert(kExistsField).versions = {Version{Value::Int(1), Dot{kNodeA, 1}, hlc}};
  record.FindOrInsert("data").versions = {
      Version{Value::Bytes(std::move(bytes)), Dot{kNodeA, 1}, hlc}};
  record.FindOrInsert("name").versions = {
      Version{Value::Text("photo-0001.jpg"), Dot{kNodeB, 1}, hlc}};
  record.mutable_vv() = VersionVector({{kNodeA, 1}, {kNodeB, 1}});
  return record;
}

// Bytes processed are the encoded bytes in every codec benchmark and its baseline.
void RunEncode(benchmark::State& state, const Record& record) {
  const size_t encoded_size = EncodeRecord(record).size();
  for (auto _ : state) {
    std::string bytes = EncodeRecord(record);
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * encoded_size));
  state.counters["encoded_bytes"] = static_cast<double>(encoded_size);
}

void RunDecode(benchmark::State& state, const Record& record) {
  const std::string bytes = EncodeRecord(record);
  if (!DecodeRecord(bytes).has_value()) {
    state.SkipWithError("the encoded record does not decode");
    return;
  }
  for (auto _ : state) {
    Result<Record> decoded = DecodeRecord(bytes);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.counters["encoded_bytes"] = static_cast<double>(bytes.size());
}

// Baseline for the codec: memcpy of the encoded bytes into a buffer allocated beforehand.
void RunMemcpy(benchmark::State& state, const Record& record) {
  const std::string bytes = EncodeRecord(record);
  std::string buffer(bytes.size(), '\0');
  for (auto _ : state) {
    std::memcpy(buffer.data(), bytes.data(), bytes.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}

void BM_RecordEncode_Typical(benchmark::State& state) { RunEncode(state, TypicalRecord()); }
void BM_RecordDecode_Typical(benchmark::State& state) { RunDecode(state, TypicalRecord()); }
void BM_Memcpy_Typical(benchmark::State& state) { RunMemcpy(state, TypicalRecord()); }
void BM_RecordEncode_Blob64K(benchmark::State& state) { RunEncode(state, BlobRecord()); }
void BM_RecordDecode_Blob64K(benchmark::State& state) { RunDecode(state, BlobRecord()); }
void BM_Memcpy_Blob64K(benchmark::State& state) { RunMemcpy(state, BlobRecord()); }
BENCHMARK(BM_RecordEncode_Typical);
BENCHMARK(BM_RecordDecode_Typical);
BENCHMARK(BM_Memcpy_Typical);
BENCHMARK(BM_RecordEncode_Blob64K);
BENCHMARK(BM_RecordDecode_Blob64K);
BENCHMARK(BM_Memcpy_Blob64K);

}  // namespace
}  // namespace lockstep::core

BENCHMARK_MAIN();
