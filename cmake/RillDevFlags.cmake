# Flags for rill's OWN targets (tests, header checks, examples, bench, tools).
#
# Nothing here is attached to rill::rill: a consumer's warning level, -Werror and sanitizer
# choices stay the consumer's business. Targets opt in by linking `rill_dev` (= rill::rill +
# rill_warnings + rill_sanitizers) or the two helpers separately.

include_guard(GLOBAL)

# --- warnings --------------------------------------------------------------------------------
add_library(rill_warnings INTERFACE)
if(MSVC)
  target_compile_options(rill_warnings INTERFACE /W4 /permissive-)
  if(RILL_WERROR)
    target_compile_options(rill_warnings INTERFACE /WX)
  endif()
else()
  target_compile_options(rill_warnings INTERFACE -Wall -Wextra -Wpedantic)
  if(RILL_WERROR)
    target_compile_options(rill_warnings INTERFACE -Werror)
  endif()
endif()

# --- sanitizers ------------------------------------------------------------------------------
add_library(rill_sanitizers INTERFACE)
set(RILL_SANITIZER_LIST "")
if(NOT RILL_SANITIZE STREQUAL "")
  if(MSVC)
    message(FATAL_ERROR "RILL_SANITIZE is only supported with GCC and Clang")
  endif()
  string(REPLACE "," ";" RILL_SANITIZER_LIST "${RILL_SANITIZE}")
  foreach(s IN LISTS RILL_SANITIZER_LIST)
    if(NOT s MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR
        "RILL_SANITIZE: unknown sanitizer '${s}' (use '', 'address,undefined' or 'thread')")
    endif()
  endforeach()
  if("thread" IN_LIST RILL_SANITIZER_LIST AND
     ("address" IN_LIST RILL_SANITIZER_LIST OR "leak" IN_LIST RILL_SANITIZER_LIST))
    message(FATAL_ERROR "RILL_SANITIZE: 'thread' cannot be combined with 'address'/'leak'")
  endif()

  set(_rill_san_flags "-fsanitize=${RILL_SANITIZE}" -fno-omit-frame-pointer)
  if("undefined" IN_LIST RILL_SANITIZER_LIST)
    # Make every UB report fatal so ctest sees a failure, not just a line on stderr.
    list(APPEND _rill_san_flags -fno-sanitize-recover=all)
  endif()
  target_compile_options(rill_sanitizers INTERFACE ${_rill_san_flags} -g)
  target_link_options(rill_sanitizers INTERFACE ${_rill_san_flags})
  unset(_rill_san_flags)
  message(STATUS "rill: sanitizers enabled for tests/examples/bench/tools: ${RILL_SANITIZE}")
endif()

# --- the bundle the project's own programs link --------------------------------------------
add_library(rill_dev INTERFACE)
target_link_libraries(rill_dev INTERFACE rill::rill rill_warnings rill_sanitizers)

# rill_add_programs(<dir> [PREFIX <p>] [OUT_VAR <var>] [OPTIONS <compile options>...])
#   One executable per <dir>/*.cpp, named <p><stem> with output name <stem>. The glob is
#   re-checked at build time (CONFIGURE_DEPENDS) and may be empty.
function(rill_add_programs dir)
  cmake_parse_arguments(ARG "" "PREFIX;OUT_VAR" "OPTIONS" ${ARGN})
  file(GLOB _sources CONFIGURE_DEPENDS "${dir}/*.cpp")
  list(SORT _sources)
  set(_targets "")
  foreach(src IN LISTS _sources)
    get_filename_component(stem "${src}" NAME_WE)
    set(tgt "${ARG_PREFIX}${stem}")
    add_executable(${tgt} "${src}")
    set_target_properties(${tgt} PROPERTIES OUTPUT_NAME "${stem}")
    target_link_libraries(${tgt} PRIVATE rill_dev)
    if(ARG_OPTIONS)
      target_compile_options(${tgt} PRIVATE ${ARG_OPTIONS})
    endif()
    list(APPEND _targets ${tgt})
  endforeach()
  if(ARG_OUT_VAR)
    set(${ARG_OUT_VAR} "${_targets}" PARENT_SCOPE)
  endif()
endfunction()
