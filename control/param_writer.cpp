// Parameter slot writes and reads under the slot seqlock. [control] threads.
#include "control/param_writer.hpp"

#include <cmath>
#include <cstdio>

#include "shm/seqlock.hpp"

namespace rackd::control {
namespace {

const char* expects(shm::ParamKind kind) {
  switch (kind) {
    case shm::ParamKind::kFloat: return "a number";
    case shm::ParamKind::kInt: return "an integer";
    case shm::ParamKind::kBool: return "true/false or 0/1";
  }
  return "a value";
}

std::string type_name(char tag) {
  switch (tag) {
    case 's': case 'S': return "a string";
    case 'b': return "a blob";
    case 'N': return "nil";
    case 'I': return "infinitum";
    case 'T': case 'F': return "a boolean";
    case 't': return "a timetag";
    case 'c': return "a char";
    case 'm': return "a MIDI message";
    default: return std::string("type '") + tag + "'";
  }
}

bool in_range(const registry::ParamSpec& spec, double v, std::string& why) {
  // Written as !(in range) so NaN is refused too.
  if (!(v >= spec.min && v <= spec.max)) {
    why = spec.name + ": " + format_number(v) + " is out of range [" + format_number(spec.min) + ", " +
          format_number(spec.max) + "]" + (spec.unit.empty() ? "" : " " + spec.unit);
    return false;
  }
  return true;
}

}  // namespace

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

bool convert_arg(const registry::ParamSpec& spec, const OscArg& arg, double& out, std::string& why) {
  const bool is_bool_tag = arg.tag == 'T' || arg.tag == 'F';
  if (!arg.is_number() && !(is_bool_tag && spec.kind == shm::ParamKind::kBool)) {
    why = spec.name + " expects " + expects(spec.kind) + ", got " + type_name(arg.tag);
    return false;
  }
  double v = 0;
  switch (spec.kind) {
    case shm::ParamKind::kFloat:
      v = arg.number();
      if (!std::isfinite(v)) {
        why = spec.name + ": value is not a finite number";
        return false;
      }
      break;
    case shm::ParamKind::kInt:
      v = arg.number();
      if (!std::isfinite(v)) {
        why = spec.name + ": value is not a finite number";
        return false;
      }
      v = std::round(v);  // halves away from zero
      break;
    case shm::ParamKind::kBool:
      if (is_bool_tag) {
        v = arg.tag == 'T' ? 1.0 : 0.0;
      } else if (arg.tag == 'i' || arg.tag == 'h') {
        if (arg.i != 0 && arg.i != 1) {
          why = spec.name + " expects true/false or 0/1, got " + std::to_string(arg.i);
          return false;
        }
        v = static_cast<double>(arg.i);
      } else {
        if (!(arg.d >= 0.0 && arg.d <= 1.0)) {
          why = spec.name + " expects true/false or a number in [0, 1], got " + format_number(arg.d);
          return false;
        }
        v = arg.d >= 0.5 ? 1.0 : 0.0;
      }
      break;
  }
  if (!in_range(spec, v, why)) return false;
  out = v;
  return true;
}

bool convert_args(const registry::ParamSpec& spec, std::span<const OscArg> args, ParamValues& out,
                  std::string& why) {
  if (args.size() != spec.count) {
    why = spec.name + " takes " + std::to_string(spec.count) + (spec.count == 1 ? " value" : " values") +
          ", got " + std::to_string(args.size());
    return false;
  }
  ParamValues v{};
  for (std::size_t k = 0; k < args.size(); ++k) {
    if (!convert_arg(spec, args[k], v[k], why)) return false;
  }
  out = v;
  return true;
}

bool check_values(const registry::ParamSpec& spec, std::span<const double> values, std::string& why) {
  if (values.size() != spec.count || spec.count > shm::kParamValues) {
    why = spec.name + " takes " + std::to_string(spec.count) + " values, got " + std::to_string(values.size());
    return false;
  }
  for (double v : values) {
    if (spec.kind != shm::ParamKind::kFloat && std::isfinite(v) && v != std::round(v)) {
      why = spec.name + " expects " + expects(spec.kind) + ", got " + format_number(v);
      return false;
    }
    if (!in_range(spec, v, why)) return false;
  }
  return true;
}

void write_param(shm::ModuleIn& in, uint32_t index, std::span<const double> values) noexcept {
  if (index >= shm::kMaxParams) return;
  shm::ParamSlot& slot = in.params[index];
  const uint32_t s = shm::SeqlockWriter::begin(slot.seq);
  const std::size_t n = values.size() < shm::kParamValues ? values.size() : shm::kParamValues;
  for (std::size_t k = 0; k < n; ++k) slot.value[k].store(values[k], std::memory_order_relaxed);
  shm::SeqlockWriter::end(slot.seq, s);
  in.param_epoch.fetch_add(1, std::memory_order_release);
}

bool set_param(shm::ModuleIn& in, uint32_t index, const registry::ParamSpec& spec,
               std::span<const OscArg> args, std::string& why) {
  ParamValues v{};
  if (!convert_args(spec, args, v, why)) return false;
  write_param(in, index, std::span<const double>(v.data(), spec.count));
  return true;
}

ParamValues get_param(const shm::ModuleIn& in, uint32_t index) noexcept {
  ParamValues v{};
  if (index >= shm::kMaxParams) return v;
  const shm::ParamSlot& slot = in.params[index];
  shm::SeqlockReader::read(slot.seq, [&] {
    for (uint32_t k = 0; k < shm::kParamValues; ++k) v[k] = slot.value[k].load(std::memory_order_relaxed);
  });
  return v;
}

std::vector<OscArg> param_args(const registry::ParamSpec& spec, const ParamValues& values) {
  std::vector<OscArg> out;
  for (uint32_t k = 0; k < spec.count && k < shm::kParamValues; ++k) {
    switch (spec.kind) {
      case shm::ParamKind::kFloat: out.push_back(OscArg::float32(static_cast<float>(values[k]))); break;
      case shm::ParamKind::kInt:
        if (values[k] >= -2147483648.0 && values[k] <= 2147483647.0)
          out.push_back(OscArg::int32(static_cast<int32_t>(values[k])));
        else
          out.push_back(OscArg::int64(static_cast<int64_t>(values[k])));
        break;
      case shm::ParamKind::kBool: out.push_back(OscArg::boolean(values[k] >= 0.5)); break;
    }
  }
  return out;
}

}  // namespace rackd::control
