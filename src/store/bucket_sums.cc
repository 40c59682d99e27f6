#include "store/bucket_sums.h"

#include <algorithm>
#include <map>

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

void BucketSums::Add(int64_t collection, const RecordItem& item) { Queue(collection, item, false); }

void BucketSums::Subtract(int64_t collection, const RecordItem& item) {
  Queue(collection, item, true);
}

void BucketSums::Queue(int64_t collection, const RecordItem& item, bool subtract) {
  queued_.push_back(
      {collection * int64_t{kBucketCount} + BucketOf(item.position), subtract, item.hash});
  if (queued_.size() >= kFoldEvery) Fold();
}

void BucketSums::Fold() {
  // Sums wrap modulo 2^64 and counts too, so the order of additions does not matter.
  std::sort(queued_.begin(), queued_.end(),
            [](const Queued& x, const Queued& y) { return x.slot < y.slot; });
  Row* row = nullptr;
  int64_t row_number = 0;
  for (const Queued& queued : queued_) {
    const int64_t number = queued.slot / kBucketsPerRow;
    if (row == nullptr || number != row_number) {
      row = &deltas_[number];  // value-initialized: all zero
      row_number = number;
    }
    reconcile::RangeSummary& bucket = (*row)[static_cast<size_t>(queued.slot % kBucketsPerRow)];
    if (queued.subtract) {
      bucket.Subtract(queued.hash);
    } else {
      bucket.Add(queued.hash);
    }
  }
  queued_.clear();
}

BucketSums::BucketSums(Database& db)
    : db_(db),
      read_(kRowsPerFlushStatement,
            [](size_t rows) {
              return "SELECT id, sums FROM _lockstep_buckets WHERE id IN (" +
                     ListPlaceholders(rows) + ")";
            }),
      write_(kRowsPerFlushStatement,
             [](size_t rows) {
               return "INSERT INTO _lockstep_buckets(id, sums) VALUES " + RowPlaceholders(rows, 2) +
                      " ON CONFLICT(id) DO UPDATE SET sums = excluded.sums";
             }),
      erase_(kRowsPerFlushStatement, [](size_t rows) {
        return "DELETE FROM _lockstep_buckets WHERE id IN (" + ListPlaceholders(rows) + ")";
      }) {}

Status BucketSums::Flush() {
  Fold();
  if (deltas_.empty()) return Status::Ok();
  // In row order, so that the bucket table's pages are written in order.
  std::vector<int64_t> rows;
  rows.reserve(deltas_.size());
  for (const auto& [number, delta] : deltas_) rows.push_back(number);
  std::sort(rows.begin(), rows.end());
  Status status = FlushRows(rows);
  deltas_.clear();
  return status.WithContext("writing bucket sums");
}

Status BucketSums::FlushRows(std::span<const int64_t> rows) {
  // The stored rows, each then plus its delta.
  std::map<int64_t, Row> sums;
  for (size_t done = 0; done < rows.size();) {
    const size_t slots = read_.ReadChunk(rows.size() - done);
    const size_t count = std::min(slots, rows.size() - done);
    LOCKSTEP_ASSIGN_OR_RETURN(Statement * read, read_.For(db_, slots));
    // The last row fills the slots left over: the IN list does not mind a repeat.
    for (size_t i = 0; i < slots; ++i) {
      read->BindInt(static_cast<int>(i + 1), rows[done + std::min(i, count - 1)]);
    }
    for (;;) {
      auto found = read->Step();
      if (!found.has_value()) {
        read->Reset();
        return found.error();
      }
      if (!*found) break;
      auto decoded = DecodeRow(read->ColumnBlob(1));
      if (!decoded.has_value()) {
        read->Reset();
        return decoded.error();
      }
      sums[read->ColumnInt(0)] = *decoded;
    }
    read->Reset();
    done += count;
  }
  std::vector<int64_t> emptied;
  std::vector<int64_t> written;
  for (int64_t number : rows) {
    const Row& delta = deltas_[number];
    Row& row = sums[number];  // value-initialized when not stored: all zero
    bool empty = true;
    for (size_t i = 0; i < row.size(); ++i) {
      row[i].Add(delta[i]);
      empty = empty && row[i].count == 0;
    }
    // Counts wrap modulo 2^64 like the sums, so that a delta may subtract before it adds.
    (empty ? emptied : written).push_back(number);
  }
  for (size_t done = 0; done < written.size();) {
    const size_t count = write_.WriteChunk(written.size() - done);
    LOCKSTEP_ASSIGN_OR_RETURN(Statement * write, write_.For(db_, count));
    for (size_t i = 0; i < count; ++i) {
      const int64_t number = written[done + i];
      write->BindInt(static_cast<int>(2 * i + 1), number)
          .BindBlob(static_cast<int>(2 * i + 2), EncodeRow(sums[number]));
    }
    LOCKSTEP_RETURN_IF_ERROR(write->Run());
    done += count;
  }
  for (size_t done = 0; done < emptied.size();) {
    const size_t slots = erase_.ReadChunk(emptied.size() - done);
    const size_t count = std::min(slots, emptied.size() - done);
    LOCKSTEP_ASSIGN_OR_RETURN(Statement * erase, erase_.For(db_, slots));
    for (size_t i = 0; i < slots; ++i) {
      erase->BindInt(static_cast<int>(i + 1), emptied[done + std::min(i, count - 1)]);
    }
    LOCKSTEP_RETURN_IF_ERROR(erase->Run());
    done += count;
  }
  return Status::Ok();
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
