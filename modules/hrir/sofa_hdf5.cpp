// The libhdf5 reader of SOFA files, run only inside the reader child of
// sofa_source.cpp, after libmysofa refused a file that carries an HDF5
// signature. Child process only (one thread): allocates, never throws, leaves
// nothing for the caller to trust (sofa_source.cpp checks sizes again, hrtf.cpp
// judges values).
//
// Why a second reader: libmysofa has its own HDF5 parser, and Debian's 1.3.1
// refuses valid files it was not written for. Measured with files from
// tests/modules/sofa_writer.cpp (netCDF-4 layout, Data.IR as doubles):
//  * Data.IR chunked into more than 64 chunks ("invalid format"): a version-1
//    B-tree then has more than one level, and libmysofa's treeRead ignores the
//    node level, reads an inner node as if it were a chunk and fails to inflate
//    it. 65 chunks of one measurement are refused, 64 read; a set of 20,000
//    directions chunked by 16 measurements (1,250 chunks) is refused.
//  * Chunks without deflate ("invalid format": every chunk is inflated), and
//    chunks of 2^20 elements or more.
//  * A contiguous dataset over 256 MiB ("invalid format": 40,000 directions x 2
//    ears x 512 taps as doubles is 328 MB).
//  * Worse, chunks deflated without the shuffle filter: libmysofa un-shuffles
//    every chunk regardless and returns scrambled values with no error (all
//    1,024,000 taps of a 2,000-direction set wrong). libmysofa_misreads() spots
//    such files (by their filter pipeline), and libhdf5 reads them instead.
//  * Files written with H5Pset_libver_bounds(LATEST) (h5py's libver="latest"):
//    data layout message version 4 ("invalid format"), whatever the size.
//  * An object header continuation more than 32 MiB into the file
//    ("unsupported format"), as when dimension scales gain their
//    REFERENCE_LIST after a large Data.IR was written.
// libhdf5 reads all of these. It is a large C parser with its own CVE history,
// which is why it runs in the same child, under the same timeout, and why what
// it returns goes through the same checks as libmysofa's answer.
//
// What is required of a file here is what libmysofa's mysofa_load and
// mysofa_check require and this module relies on: the global attributes
// Conventions "SOFA", SOFAConventions "SimpleFreeFieldHRIR", DataType "FIR",
// RoomType "free field" | "reverberant" | "shoebox"; Data.IR [M][R][N];
// SourcePosition [M][3] of Type "cartesian" or "spherical" (degrees, converted
// exactly as mysofa_tocartesian does, in float); Data.SamplingRate one value;
// Data.Delay [I or M][R]. All floating point. Receiver, listener and emitter
// variables, which this module does not use, are not read.
#include "modules/hrir/sofa_hdf5.hpp"

#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <cstring>

namespace rackd::hrir::sofa_detail {
namespace {

constexpr size_t kMaxText = 4096;

// Closes an HDF5 handle when it leaves scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  bool ok() const { return id_ >= 0; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// The most specific message on HDF5's error stack (where the error was
// detected), e.g. "truncated file: eof = 4096, ..." or "inflate() failed".
herr_t first_error(unsigned n, const H5E_error2_t* e, void* data) {
  if (n == 0 && e->desc != nullptr) {
    std::snprintf(static_cast<char*>(data), 512, "%s", e->desc);
  }
  return 0;
}

// Writes "<what>: <libhdf5's reason>" into `reason` and returns false.
bool hdf5_failed(const char* what, char* reason, size_t size) {
  char detail[512] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_error, detail);
  H5Eclear2(H5E_DEFAULT);
  std::snprintf(reason, size, "%s%s%s", what, detail[0] ? ": " : "", detail);
  return false;
}

bool refuse(char* reason, size_t size, const char* text) {
  std::snprintf(reason, size, "%s", text);
  return false;
}

// A scalar (or one-element) text attribute, fixed or variable length; false
// when absent or of another type.
bool text_attribute(hid_t object, const char* name, std::string& out) {
  if (H5Aexists(object, name) <= 0) return false;
  Handle attr(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) return false;
  Handle type(H5Aget_type(attr), H5Tclose);
  Handle space(H5Aget_space(attr), H5Sclose);
  if (!type.ok() || !space.ok() || H5Tget_class(type) != H5T_STRING) return false;
  if (H5Sget_simple_extent_npoints(space) != 1) return false;
  if (H5Tis_variable_str(type) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!mem.ok() || H5Tset_size(mem, H5T_VARIABLE) < 0) return false;
    char* text = nullptr;
    if (H5Aread(attr, mem, &text) < 0 || text == nullptr) return false;
    out.assign(text, strnlen(text, kMaxText));
    H5free_memory(text);
    return true;
  }
  const size_t size = H5Tget_size(type);
  if (size == 0 || size > kMaxText) return false;
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!mem.ok() || H5Tset_size(mem, size) < 0) return false;
  std::string buffer(size, '\0');
  if (H5Aread(attr, mem, buffer.data()) < 0) return false;
  out.assign(buffer.c_str(), strnlen(buffer.c_str(), size));
  return true;
}

bool attribute_is(hid_t object, const char* name, const char* value) {
  std::string text;
  return text_attribute(object, name, text) && text == value;
}

// A floating-point dataset of rank 1..3, read as float (HDF5 converts doubles
// as a C cast does, like libmysofa), once its element count is known to be at
// most `max_values`. `dims` receives its shape.
bool read_floats(hid_t file, const char* name, uint64_t max_values, hsize_t (&dims)[3], int& rank,
                 std::vector<float>& values, char* reason, size_t size) {
  char what[128];
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
    std::snprintf(reason, size, "no %s variable", name);
    return false;
  }
  Handle ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  std::snprintf(what, sizeof what, "cannot open %s", name);
  if (!ds.ok()) return hdf5_failed(what, reason, size);
  Handle type(H5Dget_type(ds), H5Tclose);
  Handle space(H5Dget_space(ds), H5Sclose);
  if (!type.ok() || !space.ok()) return hdf5_failed(what, reason, size);
  if (H5Tget_class(type) != H5T_FLOAT) {
    std::snprintf(reason, size, "%s is not floating point", name);
    return false;
  }
  rank = H5Sget_simple_extent_ndims(space);
  if (rank < 1 || rank > 3 || H5Sget_simple_extent_dims(space, dims, nullptr) != rank) {
    std::snprintf(reason, size, "%s has %d dimensions (1 to 3 expected)", name, rank);
    return false;
  }
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] == 0 || dims[i] > max_values || count * dims[i] > max_values) {
      std::snprintf(reason, size, "%s is empty or too large (%llu values at most)", name,
                    static_cast<unsigned long long>(max_values));
      return false;
    }
    count *= dims[i];
  }
  values.resize(count);
  std::snprintf(what, sizeof what, "cannot read %s", name);
  if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    return hdf5_failed(what, reason, size);
  }
  return true;
}

// libmysofa's mysofa_s2c, operation for operation (float, radians via double).
void spherical_to_cartesian(float* v) {
  const float phi = static_cast<float>(v[0] * (M_PI / 180));
  const float theta = static_cast<float>(v[1] * (M_PI / 180));
  const float r = v[2];
  const float x = cosf(theta) * r;
  v[2] = sinf(theta) * r;
  v[0] = cosf(phi) * x;
  v[1] = sinf(phi) * x;
}

}  // namespace

bool is_hdf5(const char* path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become reasons, not stderr noise
  const htri_t yes = H5Fis_hdf5(path);
  H5Eclear2(H5E_DEFAULT);
  return yes > 0;
}

bool libmysofa_misreads(const char* path, char* why, size_t why_size) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Handle file(H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  for (const char* name : {"Data.IR", "SourcePosition", "Data.Delay", "Data.SamplingRate"}) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) continue;
    Handle ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) continue;
    Handle dcpl(H5Dget_create_plist(ds), H5Pclose);
    if (!dcpl.ok() || H5Pget_layout(dcpl) != H5D_CHUNKED) continue;
    const int filters = H5Pget_nfilters(dcpl);
    H5Z_filter_t id[2] = {H5Z_FILTER_ERROR, H5Z_FILTER_ERROR};
    for (int i = 0; i < filters && i < 2; ++i) {
      unsigned flags = 0;
      size_t values = 0;
      id[i] = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &values, nullptr, 0, nullptr, nullptr);
    }
    if (filters != 2 || id[0] != H5Z_FILTER_SHUFFLE || id[1] != H5Z_FILTER_DEFLATE) {
      std::snprintf(why, why_size,
                    "libmysofa misreads it: %s is chunked with %d filter(s) other than shuffle and deflate, "
                    "which libmysofa 1.3.1 decodes into scrambled values", name, filters);
      H5Eclear2(H5E_DEFAULT);
      return true;
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return false;
}

bool read_sofa_hdf5(const char* path, uint64_t max_measurements, uint64_t max_taps, uint64_t max_ir_values,
                    Hdf5Sofa& out, char* reason, size_t size) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Handle file(H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) return hdf5_failed("cannot open it", reason, size);

  if (!attribute_is(file, "Conventions", "SOFA") ||
      !attribute_is(file, "SOFAConventions", "SimpleFreeFieldHRIR") || !attribute_is(file, "DataType", "FIR")) {
    return refuse(reason, size,
                  "not a SOFA SimpleFreeFieldHRIR set (global attributes Conventions \"SOFA\", "
                  "SOFAConventions \"SimpleFreeFieldHRIR\", DataType \"FIR\" needed)");
  }
  if (!attribute_is(file, "RoomType", "free field") && !attribute_is(file, "RoomType", "reverberant") &&
      !attribute_is(file, "RoomType", "shoebox")) {
    return refuse(reason, size, "RoomType is not \"free field\", \"reverberant\" or \"shoebox\"");
  }

  hsize_t dims[3] = {};
  int rank = 0;
  if (!read_floats(file, "Data.IR", max_ir_values, dims, rank, out.irs, reason, size)) return false;
  if (rank != 3) return refuse(reason, size, "Data.IR is not [M][R][N]");
  out.measurements = dims[0];
  out.receivers = dims[1];
  out.taps = dims[2];
  if (out.receivers != 2) {
    std::snprintf(reason, size, "%llu receivers; need 2 (left and right ear)",
                  static_cast<unsigned long long>(out.receivers));
    return false;
  }
  if (out.measurements > max_measurements || out.taps > max_taps) {
    std::snprintf(reason, size, "too large: %llu measurements x %llu taps",
                  static_cast<unsigned long long>(out.measurements), static_cast<unsigned long long>(out.taps));
    return false;
  }
  const uint64_t m = out.measurements;

  if (!read_floats(file, "SourcePosition", 3 * m, dims, rank, out.positions_xyz, reason, size)) return false;
  if (rank != 2 || dims[0] != m || dims[1] != 3) {
    return refuse(reason, size, "SourcePosition is not [M][3] (one position per measurement)");
  }
  {
    Handle ds(H5Dopen2(file, "SourcePosition", H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return hdf5_failed("cannot open SourcePosition", reason, size);
    if (attribute_is(ds, "Type", "spherical")) {
      for (uint64_t i = 0; i < m; ++i) spherical_to_cartesian(&out.positions_xyz[3 * i]);
    } else if (!attribute_is(ds, "Type", "cartesian")) {
      return refuse(reason, size, "SourcePosition is neither spherical nor cartesian");
    }
  }

  std::vector<float> rates;
  if (!read_floats(file, "Data.SamplingRate", m, dims, rank, rates, reason, size)) return false;
  out.rate_values = rates.size();
  out.rate_hz = rates[0];

  if (!read_floats(file, "Data.Delay", 2 * m, dims, rank, out.delays, reason, size)) return false;
  if (rank != 2 || (dims[0] != 1 && dims[0] != m) || dims[1] != 2) {
    return refuse(reason, size, "Data.Delay is not [I][R] or [M][R]");
  }

  std::string database, listener;
  text_attribute(file, "DatabaseName", database);
  text_attribute(file, "ListenerShortName", listener);
  out.name = database + " " + listener;
  return true;
}

}  // namespace rackd::hrir::sofa_detail
