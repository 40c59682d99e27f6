#include "core/key.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace lockstep::core {
namespace {

enum Tag : uint8_t { kNull = 0x05, kInt = 0x10, kFloat = 0x11, kText = 0x20, kBlob = 0x30 };
constexpr uint64_t kSignBit = uint64_t{1} << 63;

void PutBigEndian(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void PutEscaped(std::string& out, std::string_view bytes) {
  for (char c : bytes) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.push_back('\0');
  out.push_back('\x01');
}

uint64_t FloatKey(double d) {
  const uint64_t bits = std::bit_cast<uint64_t>(d);
  return (bits & kSignBit) ? ~bits : bits | kSignBit;
}

double FloatFromKey(uint64_t key) {
  return std::bit_cast<double>((key & kSignBit) ? key & ~kSignBit : ~key);
}

Result<std::string> ReadEscaped(std::string_view bytes, size_t& pos) {
  std::string out;
  while (pos < bytes.size()) {
    const char c = bytes[pos++];
    if (c != '\0') {
      out.push_back(c);
      continue;
    }
    if (pos >= bytes.size()) break;
    const char next = bytes[pos++];
    if (next == '\x01') return out;
    if (next != '\xff') return DataLoss("bad escape in key");
    out.push_back('\0');
  }
  return DataLoss("unterminated string in key");
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<Value> ParseQuoted(std::string_view body, bool blob) {
  if (blob) {
    if (body.size() % 2 != 0) return InvalidArgument("blob literal has an odd number of digits");
    std::string bytes;
    for (size_t i = 0; i < body.size(); i += 2) {
      const int high = HexDigit(body[i]);
      const int low = HexDigit(body[i + 1]);
      if (high < 0 || low < 0) return InvalidArgument("blob literal has a non-hex digit");
      bytes.push_back(static_cast<char>(high * 16 + low));
    }
    return Value::Bytes(std::move(bytes));
  }
  std::string text;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\'') {
      if (i + 1 >= body.size() || body[i + 1] != '\'') {
        return InvalidArgument("text literal has an unescaped quote");
      }
      ++i;
    }
    text.push_back(body[i]);
  }
  return Value::Text(std::move(text));
}

// The length of the literal at the start of `text`: up to the closing quote, or to '|'.
size_t LiteralLength(std::string_view text) {
  const size_t open = text.find('\'');
  const size_t bar = text.find('|');
  if (open == std::string_view::npos || (bar != std::string_view::npos && bar < open)) {
    return bar == std::string_view::npos ? text.size() : bar;
  }
  for (size_t i = open + 1; i < text.size(); ++i) {
    if (text[i] != '\'') continue;
    if (i + 1 < text.size() && text[i + 1] == '\'') {
      ++i;
      continue;
    }
    return i + 1;
  }
  return text.size();
}

}  // namespace

Result<Value> ParseLiteral(std::string_view text) {
  if (text == "NULL" || text == "null") return Value::Null();
  if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') {
    return ParseQuoted(text.substr(1, text.size() - 2), false);
  }
  if (text.size() >= 3 && (text[0] == 'x' || text[0] == 'X') && text[1] == '\'' &&
      text.back() == '\'') {
    return ParseQuoted(text.substr(2, text.size() - 3), true);
  }
  int64_t integer = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), integer);
  if (error == std::errc() && end == text.data() + text.size() && !text.empty()) {
    return Value::Int(integer);
  }
  const std::string copy(text);
  char* float_end = nullptr;
  const double number = std::strtod(copy.c_str(), &float_end);
  if (!copy.empty() && float_end == copy.c_str() + copy.size()) return Value::Float(number);
  return InvalidArgument("'" + copy + "' is not a literal (NULL, 42, 1.5, 'text' or x'00ff')");
}

Result<std::vector<Value>> ParseKeyText(std::string_view text) {
  std::vector<Value> values;
  for (;;) {
    const size_t length = LiteralLength(text);
    LOCKSTEP_ASSIGN_OR_RETURN(Value value, ParseLiteral(text.substr(0, length)));
    values.push_back(std::move(value));
    if (length >= text.size()) return values;
    if (text[length] != '|') return InvalidArgument("expected '|' between key columns");
    text = text.substr(length + 1);
  }
}

std::string EncodeKey(std::span<const Value> columns) {
  std::string out;
  for (const Value& value : columns) {
    switch (value.type()) {
      case ValueType::kNull:
        out.push_back(kNull);
        break;
      case ValueType::kInt:
        out.push_back(kInt);
        PutBigEndian(out, static_cast<uint64_t>(value.as_int()) ^ kSignBit);
        break;
      case ValueType::kFloat:
        out.push_back(kFloat);
        PutBigEndian(out, FloatKey(value.as_float()));
        break;
      case ValueType::kText:
        out.push_back(kText);
        PutEscaped(out, value.as_text());
        break;
      case ValueType::kBlob:
        out.push_back(static_cast<char>(kBlob));
        PutEscaped(out, value.as_blob());
        break;
    }
  }
  return out;
}

Result<std::vector<Value>> DecodeKey(std::string_view bytes) {
  std::vector<Value> values;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto tag = static_cast<uint8_t>(bytes[pos++]);
    if (tag == kNull) {
      values.push_back(Value::Null());
      continue;
    }
    if (tag == kInt || tag == kFloat) {
      if (bytes.size() - pos < 8) return DataLoss("truncated number in key");
      uint64_t v = 0;
      for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[pos++]);
      if (tag == kInt) {
        values.push_back(Value::Int(static_cast<int64_t>(v ^ kSignBit)));
        continue;
      }
      Value f = Value::Float(FloatFromKey(v));
      if (FloatKey(f.as_float()) != v) return DataLoss("non-canonical NaN in key");
      values.push_back(std::move(f));
      continue;
    }
    if (tag != kText && tag != kBlob) return DataLoss("unknown tag in key");
    LOCKSTEP_ASSIGN_OR_RETURN(std::string s, ReadEscaped(bytes, pos));
    values.push_back(tag == kText ? Value::Text(std::move(s)) : Value::Bytes(std::move(s)));
  }
  return values;
}

std::string KeyToString(std::string_view bytes) {
  auto values = DecodeKey(bytes);
  if (!values.has_value()) return "<malformed key>";
  std::string text;
  for (const Value& value : *values) {
    if (!text.empty()) text += '|';
    text += value.ToString();
  }
  return text;
}

}  // namespace lockstep::core
