#include "store/bucket_sums.h"

#include <algorithm>

#include "base/bytes.h"

namespace lockstep::store {
namespace {

int64_t RowNumber(int64_t collection, uint32_t bucket) {
  return collection * kRowsPerCollection + bucket / kBucketsPerRow;
}

// A row as stored: for each of its 128 buckets, the count then the sum's hi and lo halves, each
// a big-endian fixed64.
constexpr size_t kRowBytes = kBucketsPerRow * 24;

std::string EncodeRow(const std::array<reconcile::RangeSummary, kBucketsPerRow>& row) {
  std::string bytes;
  bytes.reserve(kRowBytes);
  base::ByteWriter out(bytes);
  for (const reconcile::RangeSummary& bucket : row) {
    out.PutFixed64(bucket.count);
    out.PutFixed64(bucket.sum.hi);
    out.PutFixed64(bucket.sum.lo);
  }
  return bytes;
}

Result<std::array<reconcile::RangeSummary, kBucketsPerRow>> DecodeRow(std::string_view bytes) {
  if (bytes.size() != kRowBytes) return DataLoss("a row of bucket sums has the wrong size");
  std::array<reconcile::RangeSummary, kBucketsPerRow> row;
  base::ByteReader in(bytes);
  for (reconcile::RangeSummary& bucket : row) {
    LOCKSTEP_ASSIGN_OR_RETURN(bucket.count, in.ReadFixed64("bucket count"));
    LOCKSTEP_ASSIGN_OR_RETURN(bucket.sum.hi, in.ReadFixed64("bucket sum"));
    LOCKSTEP_ASSIGN_OR_RETURN(bucket.sum.lo, in.ReadFixed64("bucket sum"));
  }
  return row;
}

}  // namespace

BucketSums::Row& BucketSums::DeltaRow(int64_t collection, uint32_t bucket) {
  return deltas_[RowNumber(collection, bucket)];  // value-initialized: all zero
}

void BucketSums::Add(int64_t collection, const RecordItem& item) {
  const uint32_t bucket = BucketOf(item.position);
  DeltaRow(collection, bucket)[bucket % kBucketsPerRow].Add(item.hash);
}

void BucketSums::Subtract(int64_t collection, const RecordItem& item) {
  const uint32_t bucket = BucketOf(item.position);
  DeltaRow(collection, bucket)[bucket % kBucketsPerRow].Subtract(item.hash);
}

Status BucketSums::Flush() {
  if (deltas_.empty()) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * read,
      PrepareCached(db_, read_, "SELECT sums FROM _lockstep_buckets WHERE id = ?"));
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * write,
                            PrepareCached(db_, write_,
                                          "INSERT INTO _lockstep_buckets(id, sums) VALUES (?, ?) "
                                          "ON CONFLICT(id) DO UPDATE SET sums = excluded.sums"));
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * erase, PrepareCached(db_, erase_, "DELETE FROM _lockstep_buckets WHERE id = ?"));
  // In row order, so that the bucket table's pages are written in order.
  std::vector<int64_t> rows;
  rows.reserve(deltas_.size());
  for (const auto& [number, delta] : deltas_) rows.push_back(number);
  std::sort(rows.begin(), rows.end());
  Status status;
  for (int64_t number : rows) {
    const Row& delta = deltas_[number];
    Row sums{};
    auto found = read->BindInt(1, number).Step();
    if (!found.has_value()) {
      status = found.error();
      break;
    }
    if (*found) {
      auto decoded = DecodeRow(read->ColumnBlob(0));
      if (!decoded.has_value()) {
        read->Reset();
        status = decoded.error();
        break;
      }
      sums = *decoded;
    }
    read->Reset();
    bool empty = true;
    for (size_t i = 0; i < sums.size(); ++i) {
      sums[i].Add(delta[i]);
      empty = empty && sums[i].count == 0;
    }
    // Counts wrap modulo 2^64 like the sums, so that a delta may subtract before it adds.
    status = empty ? erase->BindInt(1, number).Run()
                   : write->BindInt(1, number).BindBlob(2, EncodeRow(sums)).Run();
    if (!status.ok()) break;
  }
  deltas_.clear();
  return status.WithContext("writing bucket sums");
}

Result<reconcile::RangeSummary> BucketSums::Read(int64_t collection, uint32_t first,
                                                 uint32_t last) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * range,
      PrepareCached(db_, range_,
                    "SELECT id, sums FROM _lockstep_buckets WHERE id BETWEEN ? AND ?"));
  range->BindInt(1, RowNumber(collection, first)).BindInt(2, RowNumber(collection, last));
  reconcile::RangeSummary total;
  for (;;) {
    auto row = range->Step();
    if (!row.has_value()) return row.error();
    if (!*row) break;
    const int64_t number = range->ColumnInt(0);
    auto sums = DecodeRow(range->ColumnBlob(1));
    if (!sums.has_value()) {
      range->Reset();
      return sums.error();
    }
    const int64_t row_first = (number - collection * kRowsPerCollection) * kBucketsPerRow;
    for (uint32_t i = 0; i < kBucketsPerRow; ++i) {
      const int64_t bucket = row_first + i;
      if (bucket >= first && bucket <= last) total.Add((*sums)[i]);
    }
  }
  range->Reset();
  return total;
}

Status BucketSums::Rebuild(Database& db) {
  LOCKSTEP_RETURN_IF_ERROR(db.Exec("DELETE FROM _lockstep_buckets"));
  BucketSums sums(db);
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db.Prepare("SELECT collection, position, hash FROM _lockstep_records"));
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    LOCKSTEP_ASSIGN_OR_RETURN(reconcile::Hash128 hash, HashFromColumn(stmt.ColumnBlob(2)));
    sums.Add(stmt.ColumnInt(0), {PositionFromColumn(stmt.ColumnInt(1)), hash});
  }
  return sums.Flush();
}

}  // namespace lockstep::store
