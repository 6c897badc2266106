// The noise-model registry: every gradient-noise covariance Σ(θ) the simulator knows, as one type
// list. A model is a header in this folder (interface in hessian.hpp), its #include and one entry
// in NoiseModels below (the top-level CMakeLists.txt parses that list); the
// config's dynamics.noise, dispatch, the CUDA instantiations, `sgdwalk info --landscapes` and the
// tests iterate over NoiseModels.
#pragma once

#include <cstddef>
#include <type_traits>

#include "sgdwalk/noise/hessian.hpp"
#include "sgdwalk/noise/hessian_squared.hpp"
#include "sgdwalk/noise/isotropic.hpp"
#include "sgdwalk/noise/kind.hpp"

namespace sgdwalk {

/// A list of noise-model types.
template <class... M>
struct NoiseList {
  static constexpr std::size_t size = sizeof...(M);
};

/// Every noise model, in the order of the config reference and of `sgdwalk info`.
using NoiseModels = NoiseList<HessianNoise, HessianSquaredNoise, IsotropicNoise>;

/// Calls f.template operator()<M>() for each noise model M, in order.
template <class F>
void for_each_noise_model(F&& f) {
  [&]<class... M>(NoiseList<M...>) { (f.template operator()<M>(), ...); }(NoiseModels{});
}

namespace detail {
template <NoiseKind K, class List>
struct FindNoiseModel {
  using type = void;
};
template <NoiseKind K, class Head, class... Tail>
struct FindNoiseModel<K, NoiseList<Head, Tail...>> {
  using type = std::conditional_t<Head::kind == K, Head,
                                  typename FindNoiseModel<K, NoiseList<Tail...>>::type>;
};
template <class... M>
constexpr bool unique_noise_ids(NoiseList<M...>) {
  constexpr int ids[] = {static_cast<int>(M::kind)...};
  for (std::size_t i = 0; i < sizeof...(M); ++i)
    for (std::size_t j = i + 1; j < sizeof...(M); ++j)
      if (ids[i] == ids[j]) return false;
  return true;
}
static_assert(unique_noise_ids(NoiseModels{}), "two noise models share a NoiseKind id");
}  // namespace detail

/// The model of id K.
template <NoiseKind K>
using NoiseModel = typename detail::FindNoiseModel<K, NoiseModels>::type;

/// Whether a noise kind reads the Hessian (a walker without it can skip computing it).
template <NoiseKind K>
inline constexpr bool noise_needs_hessian = NoiseModel<K>::needs_hessian;

}  // namespace sgdwalk
