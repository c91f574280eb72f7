// Test support: SOFA SimpleFreeFieldHRIR files written with the HDF5 C API in
// netCDF-4's layout (see sofa_writer.hpp). [setup] code, any single thread.
#include "tests/modules/sofa_writer.hpp"

#include <hdf5.h>
#include <hdf5_hl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>
#include <utility>

namespace rackd::hrir::test {
namespace {

void check(herr_t status, const char* what) {
  if (status < 0) throw std::runtime_error(std::string("HDF5: ") + what + " failed");
}

hid_t check_id(hid_t id, const char* what) {
  if (id < 0) throw std::runtime_error(std::string("HDF5: ") + what + " failed");
  return id;
}

// Closes an HDF5 handle with the right function when it leaves scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// A text attribute as netCDF-4 writes one: fixed-length, null-terminated.
void text_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type(check_id(H5Tcopy(H5T_C_S1), "H5Tcopy"), H5Tclose);
  check(H5Tset_size(type, std::max<size_t>(value.size(), 1)), "H5Tset_size");
  check(H5Tset_strpad(type, H5T_STR_NULLTERM), "H5Tset_strpad");
  Handle space(check_id(H5Screate(H5S_SCALAR), "H5Screate"), H5Sclose);
  Handle attr(check_id(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), name), H5Aclose);
  check(H5Awrite(attr, type, value.c_str()), name);
}

// A dimension without a variable, as netCDF-4 makes it: a float dataset of the
// dimension's length, never written, marked as a dimension scale.
hid_t dimension(hid_t file, const char* name, hsize_t length) {
  Handle space(check_id(H5Screate_simple(1, &length, nullptr), "H5Screate_simple"), H5Sclose);
  const hid_t ds = check_id(H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), name);
  char label[96];
  std::snprintf(label, sizeof label, "This is a netCDF dimension but not a netCDF variable.%10llu",
                static_cast<unsigned long long>(length));
  check(H5DSset_scale(ds, label), "H5DSset_scale");
  return ds;
}

}  // namespace

void sofa_direction(uint32_t m, uint32_t measurements, double& azimuth_deg, double& elevation_deg) {
  const double golden_deg = 180.0 * (3.0 - std::sqrt(5.0));  // 137.5...
  azimuth_deg = std::fmod(m * golden_deg, 360.0) - 180.0;
  elevation_deg = std::asin(1.0 - 2.0 * (m + 0.5) / measurements) * 180.0 / std::numbers::pi;
}

float sofa_tap(uint32_t m, int ear, uint32_t t) {
  uint32_t h = m * 2654435761u ^ (t + 1) * 40503u ^ static_cast<uint32_t>(ear + 1) * 0x9e3779b9u;
  h ^= h >> 15;
  h *= 0x2c1b3c6du;
  h ^= h >> 12;
  return std::ldexp(static_cast<float>(h & 0xffffffu), -24) - 0.5f;  // k * 2^-24 - 0.5: exact in float
}

float sofa_delay(uint32_t m, int ear) { return static_cast<float>((m * 3 + static_cast<uint32_t>(ear) * 5) % 8); }

void write_sofa(const std::string& path, const SofaWriteOptions& o) {
  const hsize_t m_count = o.measurements, n_count = o.taps;
  Handle fapl(check_id(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"), H5Pclose);
  // netCDF-4 asks for the 1.8 format at least (version-2 object headers, the
  // only kind libmysofa reads) and tracks attribute and link creation order.
  const H5F_libver_t low = o.latest_format ? H5F_LIBVER_LATEST : H5F_LIBVER_V18;
  check(H5Pset_libver_bounds(fapl, low, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
  Handle fcpl(check_id(H5Pcreate(H5P_FILE_CREATE), "H5Pcreate"), H5Pclose);
  check(H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "creation order");
  check(H5Pset_attr_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "creation order");
  Handle file(check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl), "H5Fcreate"), H5Fclose);

  const std::pair<const char*, std::string> globals[] = {
      {"Conventions", "SOFA"},
      {"Version", "2.1"},
      {"SOFAConventions", o.sofa_conventions},
      {"SOFAConventionsVersion", "1.0"},
      {"APIName", "rackd sofa_writer"},
      {"APIVersion", "1.0"},
      {"DataType", "FIR"},
      {"RoomType", "free field"},
      {"DatabaseName", "rackd synthetic"},
      {"ListenerShortName", "grid" + std::to_string(o.measurements)},
      {"Title", "synthetic HRIR set"},
      {"License", "No license"},
      {"Organization", "rackd"},
      {"AuthorContact", "rackd tests"},
      {"DateCreated", "2024-01-01 00:00:00"},
      {"DateModified", "2024-01-01 00:00:00"},
  };
  for (const auto& [name, value] : globals) text_attribute(file, name, value);

  Handle dim_i(dimension(file, "I", 1), H5Dclose);
  Handle dim_c(dimension(file, "C", 3), H5Dclose);
  Handle dim_r(dimension(file, "R", 2), H5Dclose);
  Handle dim_e(dimension(file, "E", 1), H5Dclose);
  Handle dim_n(dimension(file, "N", n_count), H5Dclose);
  Handle dim_m(dimension(file, "M", m_count), H5Dclose);

  // A double variable over `dims`, with its dimension scales attached in order
  // and written from `values` (all of it) unless that is empty. Returned open.
  auto variable = [&](const char* name, std::initializer_list<hid_t> dims, const std::vector<double>& values,
                      std::initializer_list<std::pair<const char*, const char*>> attrs,
                      hid_t dcpl = H5P_DEFAULT) -> hid_t {
    std::vector<hsize_t> shape;
    for (const hid_t d : dims) {
      Handle space(check_id(H5Dget_space(d), "H5Dget_space"), H5Sclose);
      hsize_t length = 0;
      H5Sget_simple_extent_dims(space, &length, nullptr);
      shape.push_back(length);
    }
    Handle space(check_id(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), name), H5Sclose);
    const hid_t ds = check_id(H5Dcreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), name);
    unsigned index = 0;
    for (const hid_t d : dims) check(H5DSattach_scale(ds, d, index++), "H5DSattach_scale");
    for (const auto& [key, value] : attrs) text_attribute(ds, key, value);
    if (!values.empty()) check(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), name);
    return ds;
  };
  const auto close = [](hid_t ds) { H5Dclose(ds); };

  // Everything is defined (and the small variables written) before Data.IR's
  // values, as netCDF-4 does (define mode, then data mode): the metadata sits
  // at the start of the file and Data.IR's storage after it.
  close(variable("ListenerPosition", {dim_i, dim_c}, {0, 0, 0}, {{"Type", "cartesian"}, {"Units", "metre"}}));
  close(variable("ListenerUp", {dim_i, dim_c}, {0, 0, 1}, {{"Type", "cartesian"}, {"Units", "metre"}}));
  close(variable("ListenerView", {dim_i, dim_c}, {1, 0, 0}, {{"Type", "cartesian"}, {"Units", "metre"}}));
  close(variable("ReceiverPosition", {dim_r, dim_c, dim_i}, {0, 0.09, 0, 0, -0.09, 0},
                 {{"Type", "cartesian"}, {"Units", "metre"}}));
  close(variable("EmitterPosition", {dim_e, dim_c, dim_i}, {0, 0, 0}, {{"Type", "cartesian"}, {"Units", "metre"}}));

  std::vector<double> values(3 * m_count);
  for (uint32_t m = 0; m < o.measurements; ++m) {
    sofa_direction(m, o.measurements, values[3 * m], values[3 * m + 1]);
    values[3 * m + 2] = 1.2;
  }
  close(variable("SourcePosition", {dim_m, dim_c}, values, {{"Type", "spherical"}, {"Units", "degree, degree, metre"}}));
  close(variable("Data.SamplingRate", {dim_i}, {o.rate_hz}, {{"Units", "hertz"}}));
  if (o.delay_per_measurement) {
    values.assign(2 * m_count, 0.0);
    for (uint32_t m = 0; m < o.measurements; ++m) {
      for (int e = 0; e < 2; ++e) values[2 * m + e] = sofa_delay(m, e);
    }
    close(variable("Data.Delay", {dim_m, dim_r}, values, {}));
  } else {
    close(variable("Data.Delay", {dim_i, dim_r}, {0, 0}, {}));
  }

  Handle dcpl(check_id(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate"), H5Pclose);
  if (o.chunked) {
    const hsize_t chunk[3] = {std::min<hsize_t>(std::max(o.chunk_measurements, 1u), m_count), 2, n_count};
    check(H5Pset_chunk(dcpl, 3, chunk), "H5Pset_chunk");
    if (o.shuffle) check(H5Pset_shuffle(dcpl), "H5Pset_shuffle");
    if (o.deflate_level > 0) check(H5Pset_deflate(dcpl, static_cast<unsigned>(o.deflate_level)), "H5Pset_deflate");
  }
  Handle ir(variable("Data.IR", {dim_m, dim_r, dim_n}, {}, {}, dcpl), H5Dclose);
  values.assign(m_count * 2 * n_count, 0.0);
  for (uint32_t m = 0; m < o.measurements; ++m) {
    for (int e = 0; e < 2; ++e) {
      for (uint32_t t = 0; t < o.taps; ++t) values[(2 * m + e) * n_count + t] = sofa_tap(m, e, t);
    }
  }
  if (o.nan_measurement >= 0 && o.nan_measurement < o.measurements) {
    values[static_cast<size_t>(o.nan_measurement) * 2 * n_count] = std::nan("");
  }
  check(H5Dwrite(ir, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "Data.IR");
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), "H5Fflush");
}

}  // namespace rackd::hrir::test
