// EQ presets: ParametricEQ.txt and inline band parsing (with per-channel
// bands), mapping onto parameter slots. [setup] only (server patch load, tests).
#include "modules/common/text.hpp"
#include "modules/eq/preset.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace rackd::eq {
namespace {

using modules::quote;

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

bool iequals(std::string_view a, std::string_view b) { return upper(a) == upper(b); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<double> number(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// One error site: "<name>:<line>: ".
struct Where {
  const std::string& name;
  std::size_t line;
  [[noreturn]] void fail(const std::string& reason) const {
    throw std::runtime_error(name + ":" + std::to_string(line) + ": " + reason);
  }
};

void check_range(const Where& at, const char* what, double v, double lo, double hi,
                 const char* unit) {
  if (!(v >= lo && v <= hi)) {
    at.fail(std::string(what) + " " + fmt(v) + unit + " is out of range [" + fmt(lo) + ", " +
            fmt(hi) + "]" + unit);
  }
}

// `Filter [N]: ON|OFF TYPE key value [unit] ...`; `rest` is what follows "Filter".
BandParams parse_filter(const Where& at, std::string_view rest) {
  const std::size_t colon = rest.find(':');
  if (colon == std::string_view::npos) at.fail("expected \"Filter N: ON|OFF TYPE ...\"");
  const std::string_view number_part = trim(rest.substr(0, colon));
  if (!number_part.empty()) {
    const auto n = number(number_part);
    if (!n || *n < 0 || *n != std::floor(*n)) {
      at.fail("filter number " + quote(number_part) + " is not a whole number");
    }
  }
  const auto tok = split_ws(rest.substr(colon + 1));
  if (tok.empty()) at.fail("filter has no ON/OFF");
  BandParams band;
  if (iequals(tok[0], "ON")) {
    band.on = true;
  } else if (iequals(tok[0], "OFF")) {
    band.on = false;
  } else {
    at.fail("expected ON or OFF, got " + quote(tok[0]));
  }
  if (tok.size() < 2) at.fail("filter has no type");
  const std::string code = upper(tok[1]);
  const auto type = band_type_from_name(code);
  // Upper-cased, so only the short codes match, never the patch names ("peak").
  if (!type) {
    at.fail("unknown filter type " + quote(tok[1]) +
            " (expected PK, LSC, HSC, LS, HS, LP, HP, LPQ, HPQ, BP, NO or AP)");
  }
  band.type = *type;

  std::optional<double> fc, gain, q;
  std::size_t i = 2;
  auto value_after = [&](const char* key) {
    if (i + 1 >= tok.size()) at.fail(std::string(key) + " has no value");
    const auto v = number(tok[i + 1]);
    if (!v) at.fail(std::string(key) + " value " + quote(tok[i + 1]) + " is not a number");
    i += 2;
    return *v;
  };
  auto skip_unit = [&](const char* unit) {
    if (i < tok.size() && iequals(tok[i], unit)) ++i;
  };
  while (i < tok.size()) {
    const std::string key = upper(tok[i]);
    if (key == "FC") {
      fc = value_after("Fc");
      skip_unit("Hz");
    } else if (key == "GAIN") {
      gain = value_after("Gain");
      skip_unit("dB");
    } else if (key == "Q") {
      q = value_after("Q");
    } else if (key == "BW") {
      if (i + 1 < tok.size() && iequals(tok[i + 1], "Oct")) ++i;
      const double bw = value_after("BW");
      if (!(bw > 0 && bw <= 10)) at.fail("BW " + fmt(bw) + " is out of range (0, 10] octaves");
      // Analog relation between bandwidth in octaves and Q.
      q = 1.0 / (2.0 * std::sinh(std::log(2.0) / 2.0 * bw));
    } else if (i == 2 && key.size() > 2 && key.ends_with("DB")) {
      at.fail("slope variants such as " + quote(std::string(tok[1]) + " " + std::string(tok[i])) +
              " are not supported; use LSC/HSC with a Q");
    } else {
      at.fail("unexpected " + quote(tok[i]) + " (expected Fc, Gain, Q or BW)");
    }
  }
  if (!fc) at.fail(code + " filter needs \"Fc <freq> Hz\"");
  check_range(at, "Fc", *fc, kFreqMinHz, kFreqMaxHz, " Hz");
  band.freq_hz = *fc;
  if (band_type_uses_gain(band.type)) {
    if (!gain) at.fail(code + " filter needs \"Gain <gain> dB\"");
  }
  if (gain) {
    check_range(at, "Gain", *gain, kGainMinDb, kGainMaxDb, " dB");
    band.gain_db = *gain;
  }
  if (band_type_uses_q(band.type)) {
    if (!q) at.fail(code + " filter needs \"Q <q>\"");
  }
  if (q) {
    check_range(at, "Q", *q, kQMin, kQMax, "");
    band.q = *q;
  }
  return band;
}

// `Channel: L` (one channel, by name or number) or `Channel: ALL`; `rest` is
// what follows the colon. Returns the channel, 0 for all.
int parse_channel(const Where& at, std::string_view rest) {
  const auto tok = split_ws(rest);
  if (tok.empty()) at.fail("Channel has no value (expected a channel such as L, R, 1, 2, or ALL)");
  std::optional<int> channel;
  for (std::string_view t : tok) {
    const auto c = channel_from_name(t);
    if (!c) {
      at.fail("unknown channel " + quote(t) +
              " (expected L, R, C, LFE, RL, RR, SL, SR, BL, BR, a number 1.." +
              std::to_string(kMaxBandChannel) + ", or ALL)");
    }
    if (channel && *channel != *c) {
      at.fail("\"Channel: " + std::string(trim(rest)) +
              "\" names several channels; an eq band applies to one channel or to all, so "
              "give each channel its own Channel: line and filters (or use ALL)");
    }
    channel = c;
  }
  return *channel;
}

double toml_number(const toml::node& n, bool& ok) {
  ok = true;
  if (const auto* i = n.as_integer()) return static_cast<double>(i->get());
  if (const auto* f = n.as_floating_point()) return f->get();
  ok = false;
  return 0;
}

}  // namespace

std::optional<int> channel_from_name(std::string_view name) {
  static constexpr struct {
    const char* name;
    int channel;
  } kNamed[] = {{"ALL", 0}, {"L", 1},  {"R", 2},  {"C", 3},  {"LFE", 4}, {"SUB", 4},
                {"RL", 5},  {"BL", 5}, {"RR", 6}, {"BR", 6}, {"SL", 7},  {"SR", 8}};
  const std::string u = upper(name);
  for (const auto& n : kNamed) {
    if (u == n.name) return n.channel;
  }
  const auto v = number(name);
  if (v && *v >= 1 && *v <= kMaxBandChannel && *v == std::floor(*v)) return static_cast<int>(*v);
  return std::nullopt;
}

Preset parse_parametric_eq(std::string_view text, const std::string& name) {
  Preset preset;
  std::size_t line_no = 0;
  int channel = 0;              // of the last Channel: line; 0 = all
  std::string channel_text;     // as written there, for messages
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // UTF-8 BOM
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    const Where at{name, line_no};

    const std::size_t colon = line.find(':');
    const std::string head = upper(trim(line.substr(0, std::min(colon, line.size()))));
    if (head == "PREAMP") {
      if (channel != 0) {
        at.fail("Preamp after \"Channel: " + channel_text +
                "\" would apply to that channel only, but the eq's preamp is common to all "
                "channels; move it before the first Channel: line or after \"Channel: ALL\"");
      }
      const auto tok = split_ws(line.substr(colon + 1));
      if (tok.empty()) at.fail("Preamp has no value");
      const auto v = number(tok[0]);
      if (!v) at.fail("Preamp value " + quote(tok[0]) + " is not a number");
      if (tok.size() > 2 || (tok.size() == 2 && !iequals(tok[1], "dB"))) {
        at.fail("expected \"Preamp: <gain> dB\"");
      }
      preset.preamp_db += *v;
      check_range(at, "Preamp", preset.preamp_db, kPreampMinDb, kPreampMaxDb, " dB");
    } else if (upper(line.substr(0, 6)) == "FILTER") {
      if (preset.bands.size() == static_cast<std::size_t>(kMaxBands)) {
        at.fail("more than " + std::to_string(kMaxBands) + " filters (the eq has " +
                std::to_string(kMaxBands) + " bands)");
      }
      preset.bands.push_back(parse_filter(at, line.substr(6)));
      preset.bands.back().channel = channel;
    } else if (head == "CHANNEL") {
      channel = parse_channel(at, line.substr(colon + 1));
      channel_text = std::string(trim(line.substr(colon + 1)));
    } else {
      at.fail("unsupported line " + quote(line.substr(0, 40)) +
              " (expected \"Preamp: X dB\", \"Filter N: ...\" or \"Channel: ...\")");
    }
  }
  return preset;
}

Preset load_parametric_eq(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open preset file");
  std::ostringstream os;
  os << f.rdbuf();
  if (f.bad()) throw std::runtime_error(path + ": cannot read preset file");
  return parse_parametric_eq(os.str(), path);
}

std::vector<BandParams> parse_inline_bands(const toml::array& bands) {
  std::vector<BandParams> out;
  for (std::size_t i = 0; i < bands.size(); ++i) {
    const std::string who = "bands[" + std::to_string(i) + "]: ";
    auto fail = [&](const std::string& reason) { throw std::runtime_error(who + reason); };
    const toml::table* t = bands[i].as_table();
    if (!t) fail("must be a table like { type = \"peak\", freq = 1000.0, gain = -3.0, q = 1.0 }");
    BandParams band;
    band.on = true;
    bool have_type = false, have_freq = false;
    for (const auto& [key_node, value] : *t) {
      const std::string_view key = key_node.str();
      bool ok = true;
      if (key == "type") {
        const auto* s = value.as_string();
        const auto type = s ? band_type_from_name(s->get()) : std::nullopt;
        if (!s) fail("type must be a string");
        if (!type) {
          fail("unknown type " + quote(s->get()) +
               " (peak, low_shelf, high_shelf, low_shelf_fixed, high_shelf_fixed, low_pass, "
               "high_pass, low_pass_q, high_pass_q, band_pass, notch, all_pass, or an APO code)");
        }
        band.type = *type;
        have_type = true;
      } else if (key == "freq") {
        band.freq_hz = toml_number(value, ok);
        if (!ok) fail("freq must be a number (Hz)");
        if (!(band.freq_hz >= kFreqMinHz && band.freq_hz <= kFreqMaxHz)) {
          fail("freq = " + fmt(band.freq_hz) + " is out of range [" + fmt(kFreqMinHz) + ", " +
               fmt(kFreqMaxHz) + "] Hz");
        }
        have_freq = true;
      } else if (key == "gain") {
        band.gain_db = toml_number(value, ok);
        if (!ok) fail("gain must be a number (dB)");
        if (!(band.gain_db >= kGainMinDb && band.gain_db <= kGainMaxDb)) {
          fail("gain = " + fmt(band.gain_db) + " is out of range [" + fmt(kGainMinDb) + ", " +
               fmt(kGainMaxDb) + "] dB");
        }
      } else if (key == "q") {
        band.q = toml_number(value, ok);
        if (!ok) fail("q must be a number");
        if (!(band.q >= kQMin && band.q <= kQMax)) {
          fail("q = " + fmt(band.q) + " is out of range [" + fmt(kQMin) + ", " + fmt(kQMax) + "]");
        }
      } else if (key == "on") {
        const auto* b = value.as_boolean();
        if (!b) fail("on must be true or false");
        band.on = b->get();
      } else if (key == "channel") {
        const std::string range = "0 (all channels) or 1.." + std::to_string(kMaxBandChannel);
        bool number_ok = false;
        const double n = toml_number(value, number_ok);
        if (number_ok) {
          if (n != std::floor(n)) fail("channel must be a whole number: " + range);
          if (n < 0 || n > kMaxBandChannel) {
            fail("channel = " + fmt(n) + " is out of range: " + range);
          }
          band.channel = static_cast<int>(n);
        } else if (const auto* name = value.as_string()) {
          const auto c = channel_from_name(name->get());
          if (!c) {
            fail("unknown channel " + quote(name->get()) + " (" + range +
                 ", or L, R, C, LFE, RL, RR, SL, SR, BL, BR, ALL)");
          }
          band.channel = *c;
        } else {
          fail("channel must be a whole number: " + range);
        }
      } else {
        fail("unknown key " + quote(key) + " (accepted: type, freq, gain, q, on, channel)");
      }
    }
    if (!have_type) fail("missing type");
    if (!have_freq) fail("missing freq");
    out.push_back(band);
  }
  return out;
}

void init_params(const std::string& config_toml, std::vector<std::vector<double>>& params) {
  if (params.size() < static_cast<std::size_t>(kParamCount)) {
    throw std::runtime_error("eq: expected " + std::to_string(kParamCount) + " parameters");
  }
  toml::table config;
  try {
    config = toml::parse(config_toml);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(std::string("config: ") + std::string(e.description()));
  }
  Preset preset;
  std::size_t preset_bands = 0;
  if (const toml::node* p = config.get("preset")) {
    const auto* path = p->as_string();
    if (!path) throw std::runtime_error("preset must be a string (a file path)");
    preset = load_parametric_eq(path->get());
    preset_bands = preset.bands.size();
  }
  if (const toml::node* b = config.get("bands")) {
    const auto* arr = b->as_array();
    if (!arr) throw std::runtime_error("bands must be an array of tables");
    std::vector<BandParams> inline_bands = parse_inline_bands(*arr);
    if (preset_bands + inline_bands.size() > static_cast<std::size_t>(kMaxBands)) {
      throw std::runtime_error("the preset has " + std::to_string(preset_bands) +
                               " bands and bands lists " + std::to_string(inline_bands.size()) +
                               "; the eq has " + std::to_string(kMaxBands));
    }
    preset.bands.insert(preset.bands.end(), inline_bands.begin(), inline_bands.end());
  }
  auto set = [&](int slot, double v) {
    auto& values = params[static_cast<std::size_t>(slot)];
    if (values.empty()) values.resize(1);
    values[0] = v;
  };
  set(kParamPreamp, preset.preamp_db);
  for (std::size_t i = 0; i < preset.bands.size(); ++i) {
    const BandParams& band = preset.bands[i];
    const int b = static_cast<int>(i);
    set(band_param(b, kFieldOn), band.on ? 1.0 : 0.0);
    set(band_param(b, kFieldType), static_cast<double>(static_cast<int>(band.type)));
    set(band_param(b, kFieldFreq), band.freq_hz);
    set(band_param(b, kFieldGain), band.gain_db);
    set(band_param(b, kFieldQ), band.q);
    set(band_param(b, kFieldChannel), static_cast<double>(band.channel));
  }
}

}  // namespace rackd::eq
