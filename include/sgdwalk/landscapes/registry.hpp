// The landscape registry: every landscape the simulator knows, as one type list.
//
// Adding a landscape = one header in this folder (physics + description, see describe.hpp), its
// #include below and one entry in BuiltinLandscapes. Config validation, sweeps, dispatch to
// template instances, the CUDA kernels (the top-level CMakeLists.txt reads this list,
// cuda/CMakeLists.txt generates one source per entry), the benchmark,
// `sgdwalk info --landscapes` and the generic tests all iterate over `Landscapes`.
//
// Out-of-tree landscapes: configure with -DSGDWALK_USER_PHYSICS=/path/my_landscapes.hpp; that
// header defines its landscapes and registers them with one line,
//   SGDWALK_USER_LANDSCAPES(MyLandscape, OtherLandscape)
// (at global scope, names qualified as needed); they are appended to the registry.
//
// A build of some entries only: configure with -DSGDWALK_LANDSCAPES="DoubleWell;MyLandscape"
// (template names); `Landscapes` then holds those, and a config naming another is refused.
#pragma once

#include <cstddef>
#include <type_traits>

#include "sgdwalk/landscapes/base.hpp"
#include "sgdwalk/landscapes/describe.hpp"
#include "sgdwalk/landscapes/double_well.hpp"
#include "sgdwalk/landscapes/harmonic.hpp"
#include "sgdwalk/landscapes/muller_brown.hpp"
#include "sgdwalk/landscapes/two_valley.hpp"
#include "sgdwalk/landscapes/two_valley_slice.hpp"

namespace sgdwalk {

/// A list of landscape templates L<T>.
template <template <class> class... L>
struct LandscapeList {
  static constexpr std::size_t size = sizeof...(L);
};

// One line per landscape; the order is the order of `sgdwalk info --landscapes` and of the
// generated CUDA sources (the top-level CMakeLists.txt parses this list: keep one entry per line).
// clang-format off
using BuiltinLandscapes = LandscapeList<
    TwoValley,
    TwoValleySlice,
    DoubleWell,
    Harmonic1,
    Harmonic2,
    Harmonic3,
    MullerBrown
>;
// clang-format on

namespace user {
/// The landscapes of SGDWALK_USER_PHYSICS; SGDWALK_USER_LANDSCAPES specialises it.
template <int = 0>
struct Registered {
  using type = LandscapeList<>;
};
}  // namespace user

}  // namespace sgdwalk

/// Registers the landscapes of an out-of-tree header (-DSGDWALK_USER_PHYSICS); use once, at global
/// scope.
#define SGDWALK_USER_LANDSCAPES(...)                  \
  template <>                                         \
  struct sgdwalk::user::Registered<0> {               \
    using type = sgdwalk::LandscapeList<__VA_ARGS__>; \
  };

#ifdef SGDWALK_USER_PHYSICS_HEADER
#include SGDWALK_USER_PHYSICS_HEADER
#endif

// -DSGDWALK_LANDSCAPES="A;B": CMakeLists.txt generates this header from selection.hpp.in; it
// defines SGDWALK_LANDSCAPE_SELECTION (the selected template names) and its text.
#ifdef SGDWALK_LANDSCAPE_SELECTION_HEADER
#include SGDWALK_LANDSCAPE_SELECTION_HEADER
#endif

namespace sgdwalk {

namespace detail {
template <class A, class B>
struct ConcatLandscapes;
template <template <class> class... A, template <class> class... B>
struct ConcatLandscapes<LandscapeList<A...>, LandscapeList<B...>> {
  using type = LandscapeList<A..., B...>;
};

template <std::size_t I, class List>
struct LandscapeAt;
template <std::size_t I, template <class> class Head, template <class> class... Tail>
struct LandscapeAt<I, LandscapeList<Head, Tail...>> : LandscapeAt<I - 1, LandscapeList<Tail...>> {};
template <template <class> class Head, template <class> class... Tail>
struct LandscapeAt<0, LandscapeList<Head, Tail...>> {
  template <class T>
  using type = Head<T>;
};
}  // namespace detail

/// Every landscape of the registry: the built-in ones, then the user's.
using RegistryLandscapes =
    typename detail::ConcatLandscapes<BuiltinLandscapes, typename user::Registered<0>::type>::type;

namespace detail {
template <template <class> class L, class List>
struct ListHolds;
template <template <class> class L, template <class> class... M>
struct ListHolds<L, LandscapeList<M...>>
    : std::bool_constant<(std::is_same_v<L<double>, M<double>> || ...)> {};

/// The entries of From that Selected holds, in From's order.
template <class From, class Selected, class Out = LandscapeList<>>
struct SelectLandscapes {
  using type = Out;
};
template <template <class> class Head, template <class> class... Tail, class Selected,
          template <class> class... Out>
struct SelectLandscapes<LandscapeList<Head, Tail...>, Selected, LandscapeList<Out...>>
    : SelectLandscapes<LandscapeList<Tail...>, Selected,
                       std::conditional_t<ListHolds<Head, Selected>::value,
                                          LandscapeList<Out..., Head>, LandscapeList<Out...>>> {};

template <class Selected, class From>
struct AllHeldBy;
template <template <class> class... S, class From>
struct AllHeldBy<LandscapeList<S...>, From>
    : std::bool_constant<(ListHolds<S, From>::value && ...)> {};
}  // namespace detail

#ifdef SGDWALK_LANDSCAPE_SELECTION
// -DSGDWALK_LANDSCAPES="A;B" at configure time: this build has those entries only, in the
// registry's order; every dispatch, the config's allowed names and the CUDA kernels follow
// Landscapes.
using SelectedLandscapes = LandscapeList<SGDWALK_LANDSCAPE_SELECTION>;
static_assert(detail::AllHeldBy<SelectedLandscapes, RegistryLandscapes>::value,
              "SGDWALK_LANDSCAPES names a template that is not a registry entry");
/// The landscapes this build has: the registry's entries that SGDWALK_LANDSCAPES selects.
using Landscapes = typename detail::SelectLandscapes<RegistryLandscapes, SelectedLandscapes>::type;
/// SGDWALK_LANDSCAPES as configured (template names, ;-separated), for messages.
inline constexpr const char* kLandscapeSelection = SGDWALK_LANDSCAPE_SELECTION_TEXT;
#else
/// The landscapes this build has: every registry entry (SGDWALK_LANDSCAPES=all, the default).
using Landscapes = RegistryLandscapes;
/// SGDWALK_LANDSCAPES as configured (template names, ;-separated), for messages.
inline constexpr const char* kLandscapeSelection = "all";
#endif

/// The I-th entry of Landscapes in precision T.
template <std::size_t I, class T>
using LandscapeAt = typename detail::LandscapeAt<I, Landscapes>::template type<T>;

/// Calls f.template operator()<L>() for each landscape template L of this build, in the
/// registry's order.
template <class F>
void for_each_landscape(F&& f) {
  [&]<template <class> class... L>(LandscapeList<L...>) {
    (f.template operator()<L>(), ...);
  }(Landscapes{});
}

/// Calls f.template operator()<L>() for each entry of the registry, built or not (the config
/// names the ones a build with SGDWALK_LANDSCAPES left out).
template <class F>
void for_each_registry_landscape(F&& f) {
  [&]<template <class> class... L>(LandscapeList<L...>) {
    (f.template operator()<L>(), ...);
  }(RegistryLandscapes{});
}

}  // namespace sgdwalk
