// Python face of the fused rollout buffer (module hmasd._core). The only file that includes
// pybind11: it checks every array's dtype, shape, contiguity and alignment, refuses instead of
// converting (a silent copy would hide a wrong dtype upstream), releases the GIL around the work,
// and delegates to the plain C++ in rollout_buffer.cpp and gae.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rollout_buffer.hpp"
#ifdef HMASD_WITH_CUDA
#include "gae_cuda.hpp"
#endif

namespace py = pybind11;
using hmasd::RolloutBuffer;

namespace {

template <typename T>
const char* dtype_name();
template <>
const char* dtype_name<float>() { return "float32"; }
template <>
const char* dtype_name<std::uint8_t>() { return "uint8"; }
template <>
const char* dtype_name<std::int64_t>() { return "int64"; }
template <>
const char* dtype_name<std::int32_t>() { return "int32"; }

std::string shape_str(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) s += ",";
    if (i + 1 < shape.size()) s += " ";
  }
  return s + ")";
}

// Returns the data pointer of `obj` after checking it is a native-endian, C-contiguous,
// aligned ndarray of dtype T with exactly `shape` (`dims` names the axes for the message).
// The pointer stays valid while the caller holds `obj`.
template <typename T>
const T* checked(const py::object& obj, const char* name, const std::vector<py::ssize_t>& shape,
                 const char* dims) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(name) + " must be a numpy.ndarray of dtype " +
                         dtype_name<T>() + ", got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  const auto arr = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = arr.dtype();
  if (dt.normalized_num() != py::dtype::of<T>().normalized_num() ||
      !dt.attr("isnative").cast<bool>()) {
    throw py::type_error(std::string(name) + " must have dtype " + dtype_name<T>() + ", got " +
                         std::string(py::str(dt)) + " (no implicit conversion is done)");
  }
  std::vector<py::ssize_t> got(arr.shape(), arr.shape() + arr.ndim());
  if (got != shape) {
    throw py::value_error(std::string(name) + " must have shape " + shape_str(shape) + " " +
                          dims + ", got " + shape_str(got));
  }
  if (!(arr.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) +
                          " must be C-contiguous (pass numpy.ascontiguousarray(" + name + "))");
  }
  if (!(arr.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) {
    throw py::value_error(std::string(name) + " must be aligned for its dtype");
  }
  return static_cast<const T*>(arr.data());
}

// A read-only NumPy view of buffer storage that keeps the Python buffer object (`owner`) alive.
template <typename T>
py::array view(const py::object& owner, const T* data, std::vector<py::ssize_t> shape) {
  py::array_t<T> arr(std::move(shape), data, owner);
  py::detail::array_proxy(arr.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return std::move(arr);
}

using Shape = std::vector<py::ssize_t>;

// One argument of add(): the field's checked pointer, or null for an optional field whose axes are
// empty (action_mask when M = 0), which must then be None.
template <typename T>
const T* step_input(const py::object& obj, const char* name, const hmasd::BufferShape& s,
                    const char* axes, bool optional) {
  if (optional && hmasd::step_size(s, axes) == 0) {
    if (!obj.is_none()) {
      throw py::value_error(std::string(name) + " given, but this buffer stores no masks (mask_dim=0)");
    }
    return nullptr;
  }
  const auto dims = hmasd::step_shape(s, axes);
  return checked<T>(obj, name, Shape(dims.begin(), dims.end()), hmasd::axes_label(axes).c_str());
}

// add(*, <one keyword per field of rollout_fields.hpp>): the parameter list is expanded from it.
#define HMASD_PARAM(name, type, axes) , const py::object& name
void add_step(RolloutBuffer& b HMASD_STEP_FIELDS(HMASD_PARAM)) {
#undef HMASD_PARAM
  const auto& s = b.shape();
  hmasd::StepInputs in;
#define HMASD_REQUIRED(name, type, axes) in.name = step_input<type>(name, #name, s, axes, false);
#define HMASD_OPTIONAL(name, type, axes) in.name = step_input<type>(name, #name, s, axes, true);
  HMASD_REQUIRED_STEP_FIELDS(HMASD_REQUIRED)
  HMASD_OPTIONAL_STEP_FIELDS(HMASD_OPTIONAL)
#undef HMASD_REQUIRED
#undef HMASD_OPTIONAL
  py::gil_scoped_release release;
  b.add(in);
}

void finalize(RolloutBuffer& b, const py::object& log_q_team, const py::object& log_q_agent,
              const py::object& last_values, const py::object& last_hl_values, double gamma,
              double gae_lambda, double gamma_high, double gae_lambda_high, double lambda_e,
              double lambda_D, double lambda_d) {
  const auto& s = b.shape();
  const hmasd::FinalizeInputs in{
      checked<float>(log_q_team, "log_q_team", {s.T, s.E}, "[T, E]"),
      checked<float>(log_q_agent, "log_q_agent", {s.T, s.E, s.A}, "[T, E, A]"),
      checked<float>(last_values, "last_values", {s.E, s.A}, "[E, A]"),
      checked<float>(last_hl_values, "last_hl_values", {s.E, s.A + 1}, "[E, A+1]"),
  };
  // float32 throughout, like the NumPy reference, so both round the same way.
  const hmasd::Coefficients c{static_cast<float>(gamma),      static_cast<float>(gae_lambda),
                              static_cast<float>(gamma_high), static_cast<float>(gae_lambda_high),
                              static_cast<float>(lambda_e),   static_cast<float>(lambda_D),
                              static_cast<float>(lambda_d)};
  py::gil_scoped_release release;
  b.finalize(in, c);
}

// [T, axes] of a field of rollout_fields.hpp.
Shape stored_shape(const hmasd::BufferShape& s, const char* axes) {
  Shape shape{s.T};
  for (auto d : hmasd::step_shape(s, axes)) shape.push_back(d);
  return shape;
}

// Registers a read-only property viewing stored data, [T, axes].
template <typename T>
void stored(py::class_<RolloutBuffer>& cls, const char* name,
            const T* (RolloutBuffer::*getter)() const, const char* axes) {
  cls.def_property_readonly(name, [getter, axes](const py::object& self) {
    const auto& b = self.cast<const RolloutBuffer&>();
    return view<T>(self, (b.*getter)(), stored_shape(b.shape(), axes));
  });
}

// Registers a read-only property viewing an output of finalize(); refuses before finalize()
// so a stale result of the previous rollout is never read by mistake.
template <typename T>
void output(py::class_<RolloutBuffer>& cls, const char* name,
            const T* (RolloutBuffer::*getter)() const, const char* axes) {
  cls.def_property_readonly(name, [getter, axes, name](const py::object& self) {
    const auto& b = self.cast<const RolloutBuffer&>();
    if (!b.finalized()) {
      throw std::runtime_error(std::string(name) +
                               " is available only after finalize() on a full buffer");
    }
    return view<T>(self, (b.*getter)(), stored_shape(b.shape(), axes));
  });
}

// The list as the module's STEP_FIELDS / OUTPUT_FIELDS: (name, dtype, axes, optional) tuples, so
// that tests compare it with the Python table (hmasd/rollout_fields.py).
py::tuple field_entry(const char* name, const char* dtype, const char* axes, bool optional) {
  py::list names;
  std::string axis;
  for (const char* c = axes;; ++c) {
    if (*c == ',' || *c == '\0') {
      names.append(axis);
      axis.clear();
      if (*c == '\0') break;
    } else {
      axis += *c;
    }
  }
  return py::make_tuple(name, dtype, py::tuple(names), optional);
}

}  // namespace

#ifdef HMASD_WITH_CUDA
// The low-level pass (Eq. 4 + GAE) on a CUDA device; returns (rewards, advantages, returns).
py::tuple low_level_gae_cuda(const py::object& reward, const py::object& log_q_team,
                             const py::object& log_q_agent, const py::object& values,
                             const py::object& bootstrap_values, const py::object& last_values,
                             const py::object& terminated, const py::object& truncated, float gamma,
                             float gae_lambda, float lambda_e, float lambda_D, float lambda_d) {
  const auto vshape = py::reinterpret_borrow<py::array>(values).request().shape;
  if (vshape.size() != 3) throw py::value_error("values must have shape [T, E, A]");
  const py::ssize_t T = vshape[0], E = vshape[1], A = vshape[2];
  hmasd::LowLevelInputs in{
      checked<float>(reward, "reward", {T, E}, "[T, E]"),
      checked<float>(log_q_team, "log_q_team", {T, E}, "[T, E]"),
      checked<float>(log_q_agent, "log_q_agent", {T, E, A}, "[T, E, A]"),
      checked<float>(values, "values", {T, E, A}, "[T, E, A]"),
      checked<float>(bootstrap_values, "bootstrap_values", {T, E, A}, "[T, E, A]"),
      checked<float>(last_values, "last_values", {E, A}, "[E, A]"),
      checked<std::uint8_t>(terminated, "terminated", {T, E}, "[T, E]"),
      checked<std::uint8_t>(truncated, "truncated", {T, E}, "[T, E]")};
  py::array_t<float> rewards({T, E, A}), advantages({T, E, A}), returns({T, E, A});
  hmasd::LowLevelOutputs out{rewards.mutable_data(), advantages.mutable_data(),
                             returns.mutable_data(), nullptr};
  const hmasd::Coefficients c{gamma, gae_lambda, gamma, gae_lambda, lambda_e, lambda_D, lambda_d};
  {
    py::gil_scoped_release release;
    hmasd::low_level_gae_cuda(T, E, A, c, in, out);
  }
  return py::make_tuple(rewards, advantages, returns);
}
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "HMASD fused rollout buffer: storage, reward mixing (Eq. 4) and GAE for both levels.";

  m.def("cuda_available", []() {
#ifdef HMASD_WITH_CUDA
    return hmasd::cuda_device_available();
#else
    return false;
#endif
  }, "True when the optional CUDA kernel was built and a CUDA device is present.");
#ifdef HMASD_WITH_CUDA
  m.def("low_level_gae_cuda", &low_level_gae_cuda, py::kw_only(), py::arg("reward"),
        py::arg("log_q_team"), py::arg("log_q_agent"), py::arg("values"),
        py::arg("bootstrap_values"), py::arg("last_values"), py::arg("terminated"),
        py::arg("truncated"), py::arg("gamma"), py::arg("gae_lambda"), py::arg("lambda_e"),
        py::arg("lambda_D"), py::arg("lambda_d"),
        "Reward mixing (Eq. 4) and low-level GAE on a CUDA device -> (rewards, advantages, returns).");
#endif

  py::class_<RolloutBuffer> cls(m, "RolloutBuffer");
  cls.def(py::init([](std::int64_t T, std::int64_t E, std::int64_t A, std::int64_t obs_dim,
                      std::int64_t state_dim, std::int64_t action_dim, std::int64_t mask_dim) {
            return new RolloutBuffer({T, E, A, obs_dim, state_dim, action_dim, mask_dim});
          }),
          py::arg("T"), py::arg("E"), py::arg("A"), py::arg("obs_dim"), py::arg("state_dim"),
          py::arg("action_dim"), py::arg("mask_dim") = 0)
#define HMASD_PY_ARG(name, type, axes) , py::arg(#name)
#define HMASD_PY_ARG_NONE(name, type, axes) , py::arg(#name) = py::none()
      .def("add", &add_step, py::kw_only() HMASD_REQUIRED_STEP_FIELDS(HMASD_PY_ARG)
                                 HMASD_OPTIONAL_STEP_FIELDS(HMASD_PY_ARG_NONE),
           "Store step t = size of every env and advance size.")
#undef HMASD_PY_ARG
#undef HMASD_PY_ARG_NONE
      .def("finalize", &finalize, py::kw_only(), py::arg("log_q_team"), py::arg("log_q_agent"),
           py::arg("last_values"), py::arg("last_hl_values"), py::arg("gamma"),
           py::arg("gae_lambda"), py::arg("gamma_high"), py::arg("gae_lambda_high"),
           py::arg("lambda_e"), py::arg("lambda_D"), py::arg("lambda_d"),
           "Mix rewards (Eq. 4), sum segment rewards, and run GAE for both levels.")
      .def("reset", &RolloutBuffer::reset, "Empty the buffer; the storage is kept.")
      .def_property_readonly("size", &RolloutBuffer::size)
      .def_property_readonly("capacity", &RolloutBuffer::capacity)
      .def_property_readonly("finalized", &RolloutBuffer::finalized)
      .def_property_readonly("num_envs", [](const RolloutBuffer& b) { return b.shape().E; })
      .def_property_readonly("num_agents", [](const RolloutBuffer& b) { return b.shape().A; })
      .def_property_readonly("obs_dim", [](const RolloutBuffer& b) { return b.shape().obs_dim; })
      .def_property_readonly("state_dim",
                             [](const RolloutBuffer& b) { return b.shape().state_dim; })
      .def_property_readonly("action_dim",
                             [](const RolloutBuffer& b) { return b.shape().action_dim; })
      .def_property_readonly("mask_dim", [](const RolloutBuffer& b) { return b.shape().mask_dim; })
      .def("__repr__", [](const RolloutBuffer& b) {
        const auto& s = b.shape();
        return "RolloutBuffer(T=" + std::to_string(s.T) + ", E=" + std::to_string(s.E) +
               ", A=" + std::to_string(s.A) + ", obs_dim=" + std::to_string(s.obs_dim) +
               ", state_dim=" + std::to_string(s.state_dim) +
               ", action_dim=" + std::to_string(s.action_dim) +
               ", size=" + std::to_string(b.size()) + ")";
      });

#define HMASD_STORED(name, type, axes) stored<type>(cls, #name, &RolloutBuffer::name, axes);
#define HMASD_OUTPUT(name, type, axes) output<type>(cls, #name, &RolloutBuffer::name, axes);
  HMASD_STEP_FIELDS(HMASD_STORED)
  HMASD_OUTPUT_FIELDS(HMASD_OUTPUT)
#undef HMASD_STORED
#undef HMASD_OUTPUT

#define HMASD_REQUIRED(name, type, axes) fields.append(field_entry(#name, dtype_name<type>(), axes, false));
#define HMASD_OPTIONAL(name, type, axes) fields.append(field_entry(#name, dtype_name<type>(), axes, true));
  py::list fields;
  HMASD_REQUIRED_STEP_FIELDS(HMASD_REQUIRED)
  HMASD_OPTIONAL_STEP_FIELDS(HMASD_OPTIONAL)
  m.attr("STEP_FIELDS") = py::tuple(fields);
  fields = py::list();
  HMASD_OUTPUT_FIELDS(HMASD_REQUIRED)
  m.attr("OUTPUT_FIELDS") = py::tuple(fields);
#undef HMASD_REQUIRED
#undef HMASD_OPTIONAL
}
