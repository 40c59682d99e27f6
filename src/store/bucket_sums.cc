#include "store/bucket_sums.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>

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

// One collection's pending changes as stored in `_lockstep_bucket_deltas.changes`: for each
// changed bucket, in increasing order, its distance from the previous one (varint; the first
// bucket's own number), the count's change (zigzag varint: counts wrap modulo 2^64, and a change
// may be negative) and the sum's change, hi then lo (big-endian fixed64).
struct BucketChange {
  uint32_t bucket;
  reconcile::RangeSummary delta;
};

bool IsZero(const reconcile::RangeSummary& delta) {
  return delta.count == 0 && delta.sum.hi == 0 && delta.sum.lo == 0;
}

void EncodeChange(uint32_t bucket, uint32_t previous, const reconcile::RangeSummary& delta,
                  base::ByteWriter& out) {
  out.PutVarint(bucket - previous);
  out.PutSignedVarint(static_cast<int64_t>(delta.count));
  out.PutFixed64(delta.sum.hi);
  out.PutFixed64(delta.sum.lo);
}

// Calls `visit` with each change in `bytes`; bounded by the bucket count, so hostile bytes cannot
// name a bucket outside the collection.
template <typename Visit>
Status DecodeChanges(std::string_view bytes, Visit visit) {
  base::ByteReader in(bytes);
  uint64_t bucket = 0;
  bool first = true;
  while (!in.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t gap, in.ReadVarint("bucket"));
    if ((!first && gap == 0) || gap >= kBucketCount || bucket + gap >= kBucketCount) {
      return DataLoss("pending bucket changes name buckets out of order");
    }
    bucket += gap;
    first = false;
    reconcile::RangeSummary delta;
    LOCKSTEP_ASSIGN_OR_RETURN(int64_t count, in.ReadSignedVarint("bucket count change"));
    delta.count = static_cast<uint64_t>(count);
    LOCKSTEP_ASSIGN_OR_RETURN(delta.sum.hi, in.ReadFixed64("bucket sum change"));
    LOCKSTEP_ASSIGN_OR_RETURN(delta.sum.lo, in.ReadFixed64("bucket sum change"));
    visit(static_cast<uint32_t>(bucket), delta);
  }
  return Status::Ok();
}

}  // namespace

BucketSums::Row& BucketSums::DeltaRow(int64_t collection, uint32_t bucket) {
  return deltas_[RowNumber(collection, bucket)];  // value-initialized: all zero
}

void BucketSums::Add(int64_t collection, const RecordItem& item) { Queue(collection, item, false); }

void BucketSums::Subtract(int64_t collection, const RecordItem& item) {
  Queue(collection, item, true);
}

void BucketSums::Queue(int64_t collection, const RecordItem& item, bool subtract) {
  queued_.push_back(
      {collection * int64_t{kBucketCount} + BucketOf(item.position), subtract, item.hash});
  if (queued_.size() >= kAddEvery) AddQueued();
}

void BucketSums::AddQueued() {
  // Sums wrap modulo 2^64 and counts too, so the order of additions does not matter: the sort only
  // makes the rows' updates sequential. A radix sort on the bytes in which the slots differ (two
  // for one collection) rather than std::sort: it was 2 % of an apply's CPU.
  if (queued_.empty()) return;
  const auto [low, high] =
      std::minmax_element(queued_.begin(), queued_.end(),
                          [](const Queued& x, const Queued& y) { return x.slot < y.slot; });
  const uint64_t differing = static_cast<uint64_t>(low->slot) ^ static_cast<uint64_t>(high->slot);
  sort_scratch_.resize(queued_.size());
  for (unsigned shift = 0; shift < 64 && (differing >> shift) != 0; shift += 8) {
    std::array<size_t, 257> start{};
    for (const Queued& queued : queued_) {
      ++start[((static_cast<uint64_t>(queued.slot) >> shift) & 0xff) + 1];
    }
    for (size_t digit = 1; digit < start.size(); ++digit) start[digit] += start[digit - 1];
    for (const Queued& queued : queued_) {
      sort_scratch_[start[(static_cast<uint64_t>(queued.slot) >> shift) & 0xff]++] = queued;
    }
    queued_.swap(sort_scratch_);
  }
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
  AddQueued();
  if (deltas_.empty()) return Status::Ok();
  uint64_t entries = 0;
  std::set<int64_t> collections;  // Append writes a row for each
  for (const auto& [number, row] : deltas_) {
    for (const reconcile::RangeSummary& delta : row) entries += IsZero(delta) ? 0 : 1;
    collections.insert(number / kRowsPerCollection);
  }
  if (entries == 0) {  // every item removed was put back: nothing changed
    deltas_.clear();
    return Status::Ok();
  }
  Status status;
  if (entries >= kMaxPendingEntries / 2) {
    // A bulk load: it could share a fold with one more such write at most, so appending would
    // only postpone rewriting every row (and write its changes twice).
    status = Fold();
  } else {
    auto size = ReadPendingSize();
    if (!size.has_value()) {
      deltas_.clear();
      return size.error().WithContext("reading pending bucket sums");
    }
    status = size->rows + collections.size() > kMaxPendingRows ||
                     size->entries + entries > kMaxPendingEntries
                 ? Fold()
                 : Append();
  }
  deltas_.clear();
  return status.WithContext("writing bucket sums");
}

namespace {
constexpr std::string_view kPendingSizeSql =
    "SELECT count(*), CAST(coalesce(sum(entries), 0) AS BIGINT) FROM _lockstep_bucket_deltas";
}  // namespace

Status BucketSums::SendPendingSize() {
  pending_known_.reset();
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * size, PrepareCached(db_, pending_size_, kPendingSizeSql));
  size->Send();
  return Status::Ok();
}

Result<BucketSums::PendingSize> BucketSums::ReadPendingSize() {
  if (pending_known_.has_value()) return *pending_known_;
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * size, PrepareCached(db_, pending_size_, kPendingSizeSql));
  auto found = size->Step();
  PendingSize known;
  if (found.has_value() && *found) {
    known = {static_cast<uint64_t>(size->ColumnInt(0)), static_cast<uint64_t>(size->ColumnInt(1))};
  }
  size->Reset();
  if (!found.has_value()) return found.error();
  pending_known_ = known;
  return known;
}

Status BucketSums::Append() {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * append,
      PrepareCached(db_, append_,
                    "INSERT INTO _lockstep_bucket_deltas(collection, entries, changes) "
                    "VALUES (?, ?, ?)"));
  std::vector<int64_t> rows;
  rows.reserve(deltas_.size());
  for (const auto& [number, delta] : deltas_) rows.push_back(number);
  std::sort(rows.begin(), rows.end());
  // One row per collection, its buckets in increasing order.
  for (size_t i = 0; i < rows.size();) {
    const int64_t collection = rows[i] / kRowsPerCollection;
    std::string changes;
    base::ByteWriter out(changes);
    int64_t entries = 0;
    uint32_t previous = 0;
    for (; i < rows.size() && rows[i] / kRowsPerCollection == collection; ++i) {
      const uint32_t row_first =
          static_cast<uint32_t>(rows[i] - collection * kRowsPerCollection) * kBucketsPerRow;
      const Row& row = deltas_[rows[i]];
      for (uint32_t b = 0; b < kBucketsPerRow; ++b) {
        if (IsZero(row[b])) continue;
        EncodeChange(row_first + b, previous, row[b], out);
        previous = row_first + b;
        ++entries;
      }
    }
    if (entries == 0) continue;
    if (pending_known_.has_value()) {
      pending_known_->rows += 1;
      pending_known_->entries += static_cast<uint64_t>(entries);
    }
    LOCKSTEP_RETURN_IF_ERROR(append->BindInt(1, collection)
                                 .BindInt(2, entries)
                                 .BindBlob(3, changes)
                                 .Queue("writing bucket sums"));
  }
  return Status::Ok();
}

Result<int64_t> BucketSums::TakePending() {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement pending,
      db_.Prepare("SELECT id, collection, changes FROM _lockstep_bucket_deltas ORDER BY id"));
  int64_t last = 0;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, pending.Step());
    if (!row) break;
    last = pending.ColumnInt(0);
    const int64_t collection = pending.ColumnInt(1);
    LOCKSTEP_RETURN_IF_ERROR(DecodeChanges(
        pending.ColumnBlob(2), [&](uint32_t bucket, const reconcile::RangeSummary& d) {
          DeltaRow(collection, bucket)[bucket % kBucketsPerRow].Add(d);
        }));
  }
  return last;
}

Status BucketSums::Fold() {
  auto last = TakePending();
  Status status = last.has_value() ? WriteRows() : last.error();
  deltas_.clear();
  if (!status.ok() || *last == 0) return status.WithContext("folding bucket sums");
  // Only what was read: the write lock keeps other writers out, but a fold must never drop a
  // change it did not add.
  LOCKSTEP_ASSIGN_OR_RETURN(Statement erase,
                            db_.Prepare("DELETE FROM _lockstep_bucket_deltas WHERE id <= ?"));
  Status erased = erase.BindInt(1, *last).Run().WithContext("folding bucket sums");
  if (erased.ok() && pending_known_.has_value()) pending_known_ = PendingSize{};
  return erased;
}

Result<bool> BucketSums::HasPending() {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement any,
                            db_.Prepare("SELECT 1 FROM _lockstep_bucket_deltas LIMIT 1"));
  return any.Step();
}

Status BucketSums::WriteRows() {
  AddQueued();
  // In row order, so that the bucket table's pages are written in order.
  std::vector<int64_t> rows;
  rows.reserve(deltas_.size());
  for (const auto& [number, delta] : deltas_) rows.push_back(number);
  std::sort(rows.begin(), rows.end());
  Status status = FlushRows(rows);
  deltas_.clear();
  return status;
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
    LOCKSTEP_RETURN_IF_ERROR(write->Queue("writing bucket sums"));
    done += count;
  }
  for (size_t done = 0; done < emptied.size();) {
    const size_t slots = erase_.ReadChunk(emptied.size() - done);
    const size_t count = std::min(slots, emptied.size() - done);
    LOCKSTEP_ASSIGN_OR_RETURN(Statement * erase, erase_.For(db_, slots));
    for (size_t i = 0; i < slots; ++i) {
      erase->BindInt(static_cast<int>(i + 1), emptied[done + std::min(i, count - 1)]);
    }
    LOCKSTEP_RETURN_IF_ERROR(erase->Queue("writing bucket sums"));
    done += count;
  }
  return Status::Ok();
}

Result<reconcile::RangeSummary> BucketSums::Read(int64_t collection, uint32_t first,
                                                 uint32_t last) {
  // One statement, so that a fold committed meanwhile by another connection is seen whole or
  // not at all. Pending rows come back with id -1 (bucket rows are numbered from 0).
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * range,
      PrepareCached(db_, range_,
                    "SELECT id, sums FROM _lockstep_buckets WHERE id BETWEEN ?1 AND ?2 "
                    "UNION ALL SELECT -1, changes FROM _lockstep_bucket_deltas "
                    "WHERE collection = ?3"));
  range->BindInt(1, RowNumber(collection, first))
      .BindInt(2, RowNumber(collection, last))
      .BindInt(3, collection);
  reconcile::RangeSummary total;
  auto add = [&](uint32_t bucket, const reconcile::RangeSummary& sum) {
    if (bucket >= first && bucket <= last) total.Add(sum);
  };
  for (;;) {
    auto row = range->Step();
    if (!row.has_value()) return row.error();
    if (!*row) break;
    const int64_t number = range->ColumnInt(0);
    if (number < 0) {
      Status decoded = DecodeChanges(range->ColumnBlob(1), add);
      if (!decoded.ok()) {
        range->Reset();
        return decoded;
      }
      continue;
    }
    auto sums = DecodeRow(range->ColumnBlob(1));
    if (!sums.has_value()) {
      range->Reset();
      return sums.error();
    }
    const auto row_first =
        static_cast<uint32_t>((number - collection * kRowsPerCollection) * kBucketsPerRow);
    for (uint32_t i = 0; i < kBucketsPerRow; ++i) add(row_first + i, (*sums)[i]);
  }
  range->Reset();
  return total;
}

Status BucketSums::Rebuild(Database& db) {
  LOCKSTEP_RETURN_IF_ERROR(db.Exec("DELETE FROM _lockstep_buckets"));
  // Pending changes are part of what is rebuilt. (The migration to version 2 runs before the
  // table exists.)
  LOCKSTEP_ASSIGN_OR_RETURN(bool pending, db.HasTable("_lockstep_bucket_deltas"));
  if (pending) LOCKSTEP_RETURN_IF_ERROR(db.Exec("DELETE FROM _lockstep_bucket_deltas"));
  BucketSums sums(db);
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db.Prepare("SELECT collection, position, hash FROM _lockstep_records"));
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    LOCKSTEP_ASSIGN_OR_RETURN(reconcile::Hash128 hash, HashFromColumn(stmt.ColumnBlob(2)));
    sums.Add(stmt.ColumnInt(0), {PositionFromColumn(stmt.ColumnInt(1)), hash});
  }
  return sums.WriteRows();
}

}  // namespace lockstep::store
