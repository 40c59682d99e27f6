#include "store/postgres_db.h"

#include <libpq-fe.h>
#include <poll.h>

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>

#include "base/bytes.h"

namespace lockstep::store {
namespace {

// Type OIDs from pg_type.dat; stable across versions.
constexpr Oid kBool = 16, kChar = 18, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kText = 25,
              kOid = 26, kFloat4 = 700, kFloat8 = 701, kUnknown = 705, kBpchar = 1042,
              kVarchar = 1043;

// What the caller should do about an error, from its SQLSTATE class.
StatusCode CodeForState(std::string_view state) {
  if (state.size() != 5) return StatusCode::kInternal;
  const std::string_view cls = state.substr(0, 2);
  if (state == "55P03" || cls == "08" || cls == "57") return StatusCode::kUnavailable;
  if (cls == "40") return StatusCode::kAborted;  // serialization failure, deadlock: retry
  if (cls == "53") return StatusCode::kResourceExhausted;
  if (cls == "28") return StatusCode::kUnauthenticated;
  if (state == "42501") return StatusCode::kPermissionDenied;
  if (state == "3D000" || state == "42P01") return StatusCode::kNotFound;
  if (cls == "22" || cls == "23" || cls == "42") return StatusCode::kInvalidArgument;
  return StatusCode::kInternal;
}

std::string FirstLine(const char* text) {
  std::string line = text == nullptr ? "" : text;
  line = line.substr(0, line.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

Status FromResult(PGconn* conn, const PGresult* result, std::string_view what) {
  std::string message(what);
  message += ": ";
  if (result == nullptr || PQresultErrorField(result, PG_DIAG_SQLSTATE) == nullptr) {
    // No answer from the server: the connection is gone or broken.
    message += FirstLine(PQerrorMessage(conn));
    return Status(StatusCode::kUnavailable, std::move(message));
  }
  message += FirstLine(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
  return Status(CodeForState(PQresultErrorField(result, PG_DIAG_SQLSTATE)), std::move(message));
}

struct ResultCloser {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultCloser>;

Status Check(PGconn* conn, PGresult* raw, std::string_view what) {
  ResultPtr result(raw);
  const ExecStatusType status = PQresultStatus(result.get());
  if (result && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)) return Status::Ok();
  return FromResult(conn, result.get(), what);
}

uint64_t BigEndian(const char* bytes, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value = value << 8 | static_cast<uint8_t>(bytes[i]);
  return value;
}

std::string FloatText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// Answers a queued statement's result goes to: a statement sent ahead (Statement::Send).
class PipelineReader {
 public:
  virtual void Deliver(ResultPtr result) = 0;
  virtual void Fail(Status status) = 0;

 protected:
  ~PipelineReader() = default;
};

}  // namespace

// Statements sent without waiting for their answers (libpq's pipeline mode), and the answers
// read, all together, at the next sync. Only inside a transaction: a sync in pipeline mode would
// commit an implicit one, making each piece of a round its own transaction.
class Pipeline {
 public:
  Pipeline(PGconn* conn, const std::string& name) : conn_(conn), name_(name) {}

  // Whether statements wait for their answers.
  bool busy() const { return !queue_.empty(); }
  // The first failure of a queued statement since the transaction began: the server aborted the
  // transaction, so it is what every later statement would meet, until a rollback.
  const Status& failed() const { return failed_; }
  // After a rollback: the transaction the failure aborted is gone.
  void Forgive() { failed_ = Status::Ok(); }
  uint64_t round_trips() const { return round_trips_; }
  void CountRoundTrip() { ++round_trips_; }

  // Sends a statement: prepared `statement` with `values`, or `text` (statement empty) parsed
  // afresh. Its answer goes to `reader` (nullptr: only its failure matters), its failure named
  // by `what`. With `commit`, the answer must say COMMIT: a COMMIT of an aborted transaction
  // answers ROLLBACK without an error.
  Status Send(const std::string& statement, const std::string& text, int count,
              const char* const* values, const int* lengths, const int* formats,
              PipelineReader* reader, std::string what, bool commit = false) {
    if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn_) != 1) {
      return Unavailable(name_ + ": " + FirstLine(PQerrorMessage(conn_)));
    }
    const int sent = statement.empty()
                         ? PQsendQueryParams(conn_, text.c_str(), count, nullptr, values, lengths,
                                             formats, /*resultFormat=*/1)
                         : PQsendQueryPrepared(conn_, statement.c_str(), count, values, lengths,
                                               formats, /*resultFormat=*/1);
    if (sent != 1) return Broken();
    queue_.push_back({reader, std::move(what), commit});
    return Status::Ok();
  }
  // A reader gone (reset or destroyed) before its answer came: the answer is dropped.
  void Forget(const PipelineReader* reader) {
    for (Entry& entry : queue_) {
      if (entry.reader == reader) entry.reader = nullptr;
    }
  }

  // Reads every answer, handing each reader its own, and leaves pipeline mode. Returns the
  // first failure (kept in failed()).
  Status Sync() {
    if (queue_.empty()) return failed_;
    ++round_trips_;
    std::deque<Entry> queue = std::move(queue_);
    queue_.clear();
    if (PQpipelineSync(conn_) != 1) {
      Status broken = Broken();
      for (Entry& entry : queue) {
        if (entry.reader != nullptr) entry.reader->Fail(broken);
      }
      return broken;
    }
    for (Entry& entry : queue) {
      ResultPtr result(PQgetResult(conn_));
      Status status;
      const ExecStatusType kind = PQresultStatus(result.get());
      if (!result) {
        status = Broken();
      } else if (kind == PGRES_PIPELINE_ABORTED) {
        // Skipped by the server after an earlier failure, which is the one to report.
        status =
            failed_.ok() ? Aborted(entry.what + ": skipped after an earlier failure") : failed_;
      } else if (kind != PGRES_COMMAND_OK && kind != PGRES_TUPLES_OK) {
        status = FromResult(conn_, result.get(), entry.what);
      } else if (entry.commit && std::string_view(PQcmdStatus(result.get())) != "COMMIT") {
        status = Aborted(entry.what + ": the transaction was rolled back");
      }
      if (!status.ok() && failed_.ok()) failed_ = status;
      // Each statement's answer ends with a null result (none when the connection broke).
      if (result) {
        while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
      }
      if (entry.reader == nullptr) continue;
      if (status.ok()) {
        entry.reader->Deliver(std::move(result));
      } else {
        entry.reader->Fail(status);
      }
    }
    // The sync's own answer, then out of pipeline mode (which needs the connection idle).
    for (int i = 0; i < 4; ++i) {
      ResultPtr result(PQgetResult(conn_));
      if (PQresultStatus(result.get()) == PGRES_PIPELINE_SYNC) break;
      if (!result && PQstatus(conn_) != CONNECTION_OK) break;
    }
    if (PQexitPipelineMode(conn_) != 1) {
      // A null result ends the round: then it is idle.
      PQclear(PQgetResult(conn_));
      if (PQexitPipelineMode(conn_) != 1 && failed_.ok()) failed_ = Broken();
    }
    return failed_;
  }

 private:
  struct Entry {
    PipelineReader* reader;
    std::string what;
    bool commit;
  };
  Status Broken() {
    Status status = Unavailable(name_ + ": " + FirstLine(PQerrorMessage(conn_)));
    if (failed_.ok()) failed_ = status;
    return status;
  }

  PGconn* conn_;
  const std::string& name_;
  std::deque<Entry> queue_;
  Status failed_;
  uint64_t round_trips_ = 0;
};

namespace {

// A server-side prepared statement with its parameters and its last result; or, with `text`
// (PrepareReplanned), a statement sent as text at every run, which the server plans each time.
class PostgresStatement final : public StatementBackend, public PipelineReader {
 public:
  PostgresStatement(PGconn* conn, Pipeline* pipeline, std::string name, int parameters,
                    std::string text = {})
      : conn_(conn),
        pipeline_(pipeline),
        name_(std::move(name)),
        text_(std::move(text)),
        params_(static_cast<size_t>(parameters)) {}
  ~PostgresStatement() override {
    if (in_flight_) pipeline_->Forget(this);
    // Inside a failed transaction the server refuses everything; the statement then lives until
    // the connection closes, which costs nothing but its plan.
    if (name_.empty() || PQstatus(conn_) != CONNECTION_OK || !pipeline_->failed().ok()) return;
    if (pipeline_->busy()) {
      (void)pipeline_->Send({}, "DEALLOCATE " + name_, 0, nullptr, nullptr, nullptr, nullptr,
                            "releasing a statement");
    } else if (PQtransactionStatus(conn_) != PQTRANS_INERROR) {
      pipeline_->CountRoundTrip();
      PQclear(PQexec(conn_, ("DEALLOCATE " + name_).c_str()));
    }
  }

  void Bind(int index, const Value& value) override {
    switch (value.type()) {
      case ValueType::kNull:
        return BindNull(index);
      case ValueType::kInt:
        return BindInt(index, value.as_int());
      case ValueType::kFloat:
        return Set(index, FloatText(value.as_float()), 0);
      case ValueType::kText:
        return BindText(index, value.as_text());
      case ValueType::kBlob:
        return BindBlob(index, value.as_blob());
    }
  }
  void BindInt(int index, int64_t value) override { Set(index, std::to_string(value), 0); }
  void BindText(int index, std::string_view text) override { Set(index, std::string(text), 0); }
  void BindBlob(int index, std::string_view bytes) override { Set(index, std::string(bytes), 1); }
  void BindNull(int index) override {
    if (Param* param = At(index)) *param = Param{};
  }
  void BindAny(int index, const Value& value) override {
    if (value.is_null()) return BindNull(index);
    std::string bytes;
    base::ByteWriter out(bytes);
    out.PutByte(static_cast<uint8_t>(value.type()));
    switch (value.type()) {
      case ValueType::kInt:
        out.PutFixed64(static_cast<uint64_t>(value.as_int()));
        break;
      case ValueType::kFloat:
        out.PutFixed64(std::bit_cast<uint64_t>(value.as_float()));
        break;
      case ValueType::kText:
        out.PutBytes(value.as_text());
        break;
      default:
        out.PutBytes(value.as_blob());
        break;
    }
    Set(index, std::move(bytes), 1);
  }

  Result<bool> Step() override {
    if (!result_ && failure_.has_value()) {  // answered, with a failure, by an earlier sync
      Status failure = std::move(*failure_);
      failure_.reset();
      return failure;
    }
    if (!result_) {
      if (!in_flight_ && !pipeline_->busy() && pipeline_->failed().ok()) {
        // Alone: one round trip either way, the unnamed statement's parse, plan and run together.
        Values values = Gather();
        pipeline_->CountRoundTrip();
        ResultPtr result(
            name_.empty()
                ? PQexecParams(conn_, text_.c_str(), values.count, nullptr, values.values.data(),
                               values.lengths.data(), values.formats.data(), /*resultFormat=*/1)
                : PQexecPrepared(conn_, name_.c_str(), values.count, values.values.data(),
                                 values.lengths.data(), values.formats.data(),
                                 /*resultFormat=*/1));
        const ExecStatusType status = PQresultStatus(result.get());
        if (!result || (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)) {
          return FromResult(conn_, result.get(), "executing statement");
        }
        result_ = std::move(result);
      } else {
        // With what was queued before it, in one round trip.
        if (!in_flight_) {
          if (!pipeline_->failed().ok()) return pipeline_->failed();
          LOCKSTEP_RETURN_IF_ERROR(SendSelf());
        }
        Status synced = pipeline_->Sync();
        if (in_flight_) {  // no answer came: the connection broke
          pipeline_->Forget(this);
          in_flight_ = false;
          return synced.ok() ? Unavailable("a statement sent got no answer") : synced;
        }
        if (failure_.has_value()) {
          Status failure = std::move(*failure_);
          failure_.reset();
          return failure;
        }
      }
      row_ = -1;
    }
    ++row_;
    return row_ < PQntuples(result_.get());
  }
  void Reset() override {
    if (in_flight_) {
      pipeline_->Forget(this);
      in_flight_ = false;
    }
    failure_.reset();
    result_.reset();
    row_ = -1;
    for (Param& param : params_) param = Param{};
  }
  Status Queue(std::string_view what) override {
    // Outside a transaction a sync would commit each piece on its own: run it now.
    if (!pipeline_->busy() && PQtransactionStatus(conn_) != PQTRANS_INTRANS) {
      return StatementBackend::Queue(what);
    }
    if (!pipeline_->failed().ok()) {
      Reset();
      return pipeline_->failed();
    }
    Values values = Gather();
    Status sent =
        pipeline_->Send(name_, text_, values.count, values.values.data(), values.lengths.data(),
                        values.formats.data(), nullptr, std::string(what));
    Reset();
    return sent;
  }
  void Send() override {
    if (in_flight_ || !pipeline_->failed().ok()) return;
    if (!pipeline_->busy() && PQtransactionStatus(conn_) != PQTRANS_INTRANS) return;
    // An answer sent for earlier and never read is not this one's.
    result_.reset();
    failure_.reset();
    (void)SendSelf();  // a failure to send is met again by Step
  }

  // PipelineReader:
  void Deliver(ResultPtr result) override {
    in_flight_ = false;
    result_ = std::move(result);
    row_ = -1;
  }
  void Fail(Status status) override {
    in_flight_ = false;
    failure_ = std::move(status);
  }

  Value Column(int index) const override {
    if (ColumnIsNull(index)) return Value::Null();
    switch (PQftype(result_.get(), index)) {
      case kBool:
      case kInt2:
      case kInt4:
      case kInt8:
      case kOid:
        return Value::Int(ColumnInt(index));
      case kFloat4:
        return Value::Float(std::bit_cast<float>(static_cast<uint32_t>(Raw(index, 4))));
      case kFloat8:
        return Value::Float(std::bit_cast<double>(Raw(index, 8)));
      case kText:
      case kVarchar:
      case kBpchar:
      case kName:
      case kChar:
      case kUnknown:
        return Value::Text(std::string(ColumnText(index)));
      default:  // bytea, and any other type's binary form
        return Value::Bytes(std::string(ColumnBlob(index)));
    }
  }
  Value ColumnAny(int index) const override {
    if (ColumnIsNull(index)) return Value::Null();
    const std::string_view bytes = ColumnBlob(index);
    if (bytes.empty()) return Value::Null();
    const std::string_view payload = bytes.substr(1);
    switch (static_cast<ValueType>(bytes[0])) {
      case ValueType::kInt:
        return Value::Int(static_cast<int64_t>(BigEndian(payload.data(), payload.size())));
      case ValueType::kFloat:
        return Value::Float(std::bit_cast<double>(BigEndian(payload.data(), payload.size())));
      case ValueType::kText:
        return Value::Text(std::string(payload));
      case ValueType::kBlob:
        return Value::Bytes(std::string(payload));
      default:
        return Value::Null();
    }
  }
  int64_t ColumnInt(int index) const override {
    if (ColumnIsNull(index)) return 0;
    switch (PQftype(result_.get(), index)) {
      case kBool:
        return Raw(index, 1) != 0 ? 1 : 0;
      case kInt2:
        return static_cast<int16_t>(Raw(index, 2));
      case kInt4:
        return static_cast<int32_t>(Raw(index, 4));
      case kOid:
        return static_cast<uint32_t>(Raw(index, 4));
      case kInt8:
        return static_cast<int64_t>(Raw(index, 8));
      default:
        return std::strtoll(PQgetvalue(result_.get(), row_, index), nullptr, 10);
    }
  }
  std::string_view ColumnText(int index) const override { return ColumnBlob(index); }
  std::string_view ColumnBlob(int index) const override {
    if (!result_ || row_ < 0 || row_ >= PQntuples(result_.get())) return {};
    return {PQgetvalue(result_.get(), row_, index),
            static_cast<size_t>(PQgetlength(result_.get(), row_, index))};
  }
  bool ColumnIsNull(int index) const override {
    return !result_ || row_ < 0 || row_ >= PQntuples(result_.get()) ||
           PQgetisnull(result_.get(), row_, index) != 0;
  }
  int column_count() const override { return result_ ? PQnfields(result_.get()) : 0; }

 private:
  struct Param {
    bool null = true;
    std::string bytes;
    int format = 0;  // 0 text, 1 binary
  };
  Param* At(int index) {
    if (index < 1 || static_cast<size_t>(index) > params_.size()) return nullptr;
    return &params_[static_cast<size_t>(index - 1)];
  }
  void Set(int index, std::string bytes, int format) {
    if (Param* param = At(index)) *param = Param{false, std::move(bytes), format};
  }
  // The column's binary value as a big-endian number of `size` bytes (0 when shorter).
  uint64_t Raw(int index, size_t size) const {
    const std::string_view bytes = ColumnBlob(index);
    return bytes.size() < size ? 0 : BigEndian(bytes.data(), size);
  }
  // The bound parameters as libpq takes them, pointing into params_.
  struct Values {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    int count = 0;
  };
  Values Gather() const {
    Values out;
    out.count = static_cast<int>(params_.size());
    out.values.resize(params_.size());
    out.lengths.resize(params_.size());
    out.formats.resize(params_.size());
    for (size_t i = 0; i < params_.size(); ++i) {
      out.values[i] = params_[i].null ? nullptr : params_[i].bytes.data();
      out.lengths[i] = static_cast<int>(params_[i].bytes.size());
      out.formats[i] = params_[i].format;
    }
    return out;
  }
  Status SendSelf() {
    Values values = Gather();
    LOCKSTEP_RETURN_IF_ERROR(pipeline_->Send(name_, text_, values.count, values.values.data(),
                                             values.lengths.data(), values.formats.data(), this,
                                             "executing statement"));
    in_flight_ = true;
    return Status::Ok();
  }

  PGconn* conn_;
  Pipeline* pipeline_;
  bool in_flight_ = false;         // sent in the pipeline, its answer not read yet
  std::optional<Status> failure_;  // the answer, when it was a failure
  std::string name_;               // empty: run as text_
  std::string text_;
  std::vector<Param> params_;
  ResultPtr result_;
  int row_ = -1;
};

// A COPY ... FROM STDIN in progress. The binary format (PostgreSQL's "COPY" documentation):
//   header   = "PGCOPY\n\377\r\n\0" flags:int32(0) extension-length:int32(0)
//   row      = field-count:int16 field*
//   field    = length:int32 bytes   (length -1 and no bytes: NULL)
//   trailer  = int16(-1)
// integers big-endian; bigint 8 bytes, double precision its IEEE bits, bytea and text their bytes.
// The text format: fields separated by tabs, rows ended by newlines, NULL as \N, and backslash,
// tab, newline and carriage return escaped with a backslash.
class PostgresRowCopy final : public RowCopy {
 public:
  PostgresRowCopy(PGconn* conn, std::string name, size_t columns, CopyFormat format)
      : conn_(conn), name_(std::move(name)), columns_(columns), format_(format) {
    if (format_ == CopyFormat::kBinary) {
      static constexpr char kSignature[] = "PGCOPY\n\377\r\n";
      buffer_.append(kSignature, sizeof kSignature);  // with its terminating NUL, as specified
      base::ByteWriter out(buffer_);
      out.PutFixed32(0);
      out.PutFixed32(0);
    }
  }
  ~PostgresRowCopy() override {
    if (!finished_) (void)End("abandoned");
  }

  void Put(const Value& value) override {
    switch (value.type()) {
      case ValueType::kNull:
        return PutNull();
      case ValueType::kInt:
        return PutInt(value.as_int());
      case ValueType::kFloat:
        if (format_ == CopyFormat::kBinary) {
          Field(8).PutFixed64(std::bit_cast<uint64_t>(value.as_float()));
        } else {
          Field(0);
          PutEscaped(FloatText(value.as_float()));
        }
        return;
      case ValueType::kText:
        if (format_ == CopyFormat::kBinary) {
          Field(static_cast<int64_t>(value.as_text().size())).PutBytes(value.as_text());
        } else {
          Field(0);
          PutEscaped(value.as_text());
        }
        return;
      case ValueType::kBlob:
        return PutBytes(value.as_blob());
    }
  }
  void PutInt(int64_t value) override {
    if (format_ == CopyFormat::kBinary) {
      Field(8).PutFixed64(static_cast<uint64_t>(value));
      return;
    }
    Field(0);
    buffer_ += std::to_string(value);
  }
  void PutBytes(std::string_view bytes) override {
    if (format_ == CopyFormat::kBinary) {
      Field(static_cast<int64_t>(bytes.size())).PutBytes(bytes);
      return;
    }
    // bytea's hex form, its backslash escaped for the text format: \\x0a1b...
    Field(0);
    static constexpr char kHex[] = "0123456789abcdef";
    const size_t at = buffer_.size();
    buffer_.resize(at + 3 + 2 * bytes.size());
    char* out = buffer_.data() + at;
    *out++ = '\\';
    *out++ = '\\';
    *out++ = 'x';
    for (const char c : bytes) {
      const auto byte = static_cast<uint8_t>(c);
      *out++ = kHex[byte >> 4];
      *out++ = kHex[byte & 15];
    }
  }
  void PutNull() override {
    Field(-1);
    if (format_ == CopyFormat::kText) buffer_ += "\\N";
  }
  void EndRow() override {
    if (fields_ != columns_ && status_.ok()) {
      status_ = Internal("a row of " + std::to_string(fields_) + " values for " +
                         std::to_string(columns_) + " columns");
    }
    if (format_ == CopyFormat::kText) buffer_ += '\n';
    fields_ = 0;
    if (buffer_.size() >= kSendAt) Send();
  }
  Status Finish() override {
    if (format_ == CopyFormat::kBinary) base::ByteWriter(buffer_).PutFixed16(0xffff);
    Send();
    return End(status_.ok() ? nullptr : "failed");
  }

 private:
  // Sent in pieces of about this size: large enough that a piece costs little, small enough
  // that a load of millions of rows does not sit in memory twice.
  static constexpr size_t kSendAt = 1 << 20;

  // Starts a field of `size` bytes, -1 for NULL (binary), or after a separator (text).
  base::ByteWriter Field(int64_t size) {
    base::ByteWriter out(buffer_);
    if (format_ == CopyFormat::kBinary) {
      if (fields_ == 0) out.PutFixed16(static_cast<uint16_t>(columns_));
      out.PutFixed32(static_cast<uint32_t>(size));
    } else if (fields_ > 0) {
      out.PutByte('\t');
    }
    ++fields_;
    return out;
  }
  void PutEscaped(std::string_view text) {
    for (const char c : text) {
      switch (c) {
        case '\\':
          buffer_ += "\\\\";
          break;
        case '\t':
          buffer_ += "\\t";
          break;
        case '\n':
          buffer_ += "\\n";
          break;
        case '\r':
          buffer_ += "\\r";
          break;
        default:
          buffer_ += c;
      }
    }
  }
  void Send() {
    if (status_.ok() && !buffer_.empty() &&
        PQputCopyData(conn_, buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
      status_ = Unavailable(name_ + ": " + FirstLine(PQerrorMessage(conn_)));
    }
    buffer_.clear();
  }
  // Ends the COPY, with `error` a client-side failure that makes the server refuse it, and
  // collects the server's verdict.
  Status End(const char* error) {
    finished_ = true;
    Status status = status_;
    if (PQputCopyEnd(conn_, error) != 1 && status.ok()) {
      status = Unavailable(name_ + ": " + FirstLine(PQerrorMessage(conn_)));
    }
    // Every result until none: the connection is ready for the next statement only then.
    while (PGresult* raw = PQgetResult(conn_)) {
      ResultPtr result(raw);
      if (PQresultStatus(raw) != PGRES_COMMAND_OK && status.ok()) {
        status = FromResult(conn_, raw, "loading rows into " + name_);
      }
    }
    return status;
  }

  PGconn* conn_;
  std::string name_;
  size_t columns_;
  CopyFormat format_;
  std::string buffer_;
  size_t fields_ = 0;  // of the current row
  Status status_;
  bool finished_ = false;
};

void IgnoreNotice(void*, const char*) {}

}  // namespace

bool IsPostgresUrl(std::string_view text) {
  return text.starts_with("postgres://") || text.starts_with("postgresql://");
}

std::string RedactPassword(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t at = url.find('@', start);
  const size_t slash = url.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return std::string(url);
  }
  const size_t colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

std::pair<std::string, int> NumberParameters(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int highest = 0;
  char quote = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      out += c;
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      out += c;
      continue;
    }
    if (c != '?') {
      out += c;
      continue;
    }
    size_t end = i + 1;
    while (end < sql.size() && sql[end] >= '0' && sql[end] <= '9') ++end;
    // As in SQLite: ?N is parameter N, a bare ? the one after the highest so far.
    const int number =
        end > i + 1 ? std::stoi(std::string(sql.substr(i + 1, end - i - 1))) : highest + 1;
    highest = std::max(highest, number);
    out += "$" + std::to_string(number);
    i = end - 1;
  }
  return {out, highest};
}

Result<std::unique_ptr<PostgresDb>> PostgresDb::Connect(std::string_view url) {
  const std::string conninfo(url);
  // Later keywords win over the URL's: connect_timeout comes first so that the URL can change it.
  // The session's rules make text forms exact and independent of the server's settings.
  const char* keywords[] = {"connect_timeout", "dbname",  "application_name",
                            "client_encoding", "options", nullptr};
  const char* values[] = {"10",
                          conninfo.c_str(),
                          "lockstep",
                          "UTF8",
                          "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=iso_8601 "
                          "-c extra_float_digits=3",
                          nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  const std::string name = RedactPassword(url);
  if (conn == nullptr) return ResourceExhausted(name + ": out of memory connecting");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    // libpq says "connection to server at ... failed: REASON"; the reason is what matters.
    std::string reason = FirstLine(error.c_str());
    if (const size_t failed = reason.find("failed: "); failed != std::string::npos) {
      reason = reason.substr(failed + 8);
    }
    StatusCode code = StatusCode::kUnavailable;
    if (error.find("password authentication failed") != std::string::npos ||
        error.find("no password supplied") != std::string::npos) {
      code = StatusCode::kUnauthenticated;
    } else if (error.find("does not exist") != std::string::npos) {
      code = StatusCode::kNotFound;
    } else if (error.find("invalid") != std::string::npos) {
      code = StatusCode::kInvalidArgument;
    }
    return Status(code, name + ": " + reason);
  }
  // Notices (a table that already exists, skipped) are not for the user's terminal.
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<PostgresDb>(new PostgresDb(conn, name));
}

PostgresDb::PostgresDb(pg_conn* conn, std::string name)
    : conn_(conn), name_(std::move(name)), pipeline_(std::make_unique<Pipeline>(conn_, name_)) {}

PostgresDb::~PostgresDb() { PQfinish(conn_); }

uint64_t PostgresDb::round_trips() const { return pipeline_->round_trips(); }

namespace {

// Whether `sql` is one statement (no `;` outside quotes, but one at the end), which pipeline mode
// can send; several go through the simple protocol, alone.
bool OneStatement(std::string_view sql) {
  while (!sql.empty() && (sql.back() == ';' || sql.back() == ' ')) sql.remove_suffix(1);
  char quote = 0;
  for (const char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';') {
      return false;
    }
  }
  return true;
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

Status PostgresDb::Exec(std::string_view sql) {
  const std::string text(sql);
  const bool commit = text == "COMMIT";
  // An aborted transaction takes nothing but a rollback: that one runs whatever was queued.
  if (StartsWithNoCase(text, "ROLLBACK")) {
    (void)pipeline_->Sync();
    pipeline_->Forgive();
  } else if (pipeline_->busy() && OneStatement(text)) {
    // With what was queued, in the same round trip.
    LOCKSTEP_RETURN_IF_ERROR(pipeline_->failed());
    LOCKSTEP_RETURN_IF_ERROR(
        pipeline_->Send({}, text, 0, nullptr, nullptr, nullptr, nullptr, name_, commit));
    return pipeline_->Sync();
  } else {
    LOCKSTEP_RETURN_IF_ERROR(pipeline_->Sync());
  }
  pipeline_->CountRoundTrip();
  ResultPtr result(PQexec(conn_, text.c_str()));
  if (commit && PQresultStatus(result.get()) == PGRES_COMMAND_OK &&
      std::string_view(PQcmdStatus(result.get())) != "COMMIT") {
    return Aborted(name_ + ": the transaction was rolled back");
  }
  return Check(conn_, result.release(), name_);
}

Result<Statement> PostgresDb::Prepare(std::string_view sql) {
  auto [text, parameters] = NumberParameters(sql);
  std::string name = "lockstep_" + std::to_string(++statements_);
  // Not queued: a preparation skipped after a failure would leave a statement the caller believes
  // prepared. Preparing is rare (statements are kept), so a round trip of its own is cheap.
  LOCKSTEP_RETURN_IF_ERROR(pipeline_->Sync());
  pipeline_->CountRoundTrip();
  LOCKSTEP_RETURN_IF_ERROR(Check(conn_, PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr),
                                 "preparing statement on " + name_));
  return Statement(
      std::make_unique<PostgresStatement>(conn_, pipeline_.get(), std::move(name), parameters));
}

Result<std::unique_ptr<RowCopy>> PostgresDb::CopyInto(std::string_view table,
                                                      std::string_view columns, size_t column_count,
                                                      CopyFormat format) {
  // COPY has no place in a pipeline: what was queued goes first.
  LOCKSTEP_RETURN_IF_ERROR(pipeline_->Sync());
  const std::string sql = "COPY " + std::string(table) + " (" + std::string(columns) +
                          ") FROM STDIN" +
                          (format == CopyFormat::kBinary ? " (FORMAT binary)" : "");
  pipeline_->CountRoundTrip();
  ResultPtr result(PQexec(conn_, sql.c_str()));
  if (PQresultStatus(result.get()) != PGRES_COPY_IN) {
    return FromResult(conn_, result.get(), "loading rows into " + name_);
  }
  pipeline_->CountRoundTrip();  // its end
  return std::unique_ptr<RowCopy>(
      std::make_unique<PostgresRowCopy>(conn_, name_, column_count, format));
}

Result<Statement> PostgresDb::PrepareReplanned(std::string_view sql) {
  auto [text, parameters] = NumberParameters(sql);
  // Checked now as Prepare would (as the unnamed statement, which any later text replaces).
  LOCKSTEP_RETURN_IF_ERROR(pipeline_->Sync());
  pipeline_->CountRoundTrip();
  LOCKSTEP_RETURN_IF_ERROR(Check(conn_, PQprepare(conn_, "", text.c_str(), 0, nullptr),
                                 "preparing statement on " + name_));
  return Statement(std::make_unique<PostgresStatement>(conn_, pipeline_.get(), std::string(),
                                                       parameters, std::move(text)));
}

bool PostgresDb::InTransaction() const {
  // Statements are queued only inside a transaction (or with the BEGIN that opens it).
  return pipeline_->busy() || PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

Status PostgresDb::BeginWrite() {
  // One lock per database. lock_timeout bounds the wait and is lifted for the rest of the
  // transaction (see LockForTransaction). Queued, with whatever the transaction reads first.
  LOCKSTEP_RETURN_IF_ERROR(pipeline_->Sync());
  LOCKSTEP_RETURN_IF_ERROR(pipeline_->Send({}, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr,
                                           "starting a write transaction on " + name_));
  return LockForTransaction(kWriterLock);
}

Status PostgresDb::LockForTransaction(int64_t key) {
  // Queued: in pipeline mode each statement goes on its own.
  const std::string what = "waiting for a lock on " + name_;
  for (const std::string& sql : {std::string("SET LOCAL lock_timeout = '10s'"),
                                 "SELECT pg_advisory_xact_lock(" + std::to_string(key) + ")",
                                 std::string("SET LOCAL lock_timeout = 0")}) {
    LOCKSTEP_RETURN_IF_ERROR(pipeline_->Send({}, sql, 0, nullptr, nullptr, nullptr, nullptr, what));
  }
  return Status::Ok();
}

Status PostgresDb::BeginRead() {
  // Queued: the snapshot is taken by the first statement either way, which brings the BEGIN's
  // answer with its own.
  LOCKSTEP_RETURN_IF_ERROR(pipeline_->Sync());
  return pipeline_->Send({}, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, nullptr, nullptr, nullptr,
                         nullptr, "starting a read on " + name_);
}

Result<bool> PostgresDb::HasTable(std::string_view name) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            Prepare("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
                                    "AND tablename = ?"));
  stmt.BindText(1, name);
  return stmt.Step();
}

Status PostgresDb::Listen(std::string_view channel) {
  return Exec("LISTEN " + QuoteIdentifier(channel));
}

int PostgresDb::socket() const { return PQsocket(conn_); }

Result<std::vector<std::string>> PostgresDb::TakeNotifications() {
  LOCKSTEP_RETURN_IF_ERROR(pipeline_->Sync());
  if (PQconsumeInput(conn_) == 0) {
    return Unavailable(name_ + ": " + FirstLine(PQerrorMessage(conn_)));
  }
  std::vector<std::string> channels;
  while (PGnotify* notify = PQnotifies(conn_)) {
    channels.emplace_back(notify->relname);
    PQfreemem(notify);
  }
  return channels;
}

Status PostgresDb::WaitForNotification(std::chrono::milliseconds limit) {
  pollfd fd{socket(), POLLIN, 0};
  if (fd.fd < 0) return Unavailable(name_ + ": connection lost");
  const int ready = poll(&fd, 1, static_cast<int>(limit.count()));
  if (ready < 0 && errno != EINTR) return Unavailable(name_ + ": waiting for notifications failed");
  return Status::Ok();
}

}  // namespace lockstep::store
