# cmake -DRILL_BINARY_DIR=<rill build dir> -DPREFIX=<dir> [-DBUILD_TYPE=...]
#       [-DINCLUDEDIR=include] [-DCMAKEDIR=share/cmake/rill] -P install_rill.cmake
#
# Installs the rill build into a fresh PREFIX and checks the installed layout.
if(NOT RILL_BINARY_DIR OR NOT PREFIX)
  message(FATAL_ERROR "install_rill.cmake: RILL_BINARY_DIR and PREFIX are required")
endif()

if(NOT INCLUDEDIR)
  set(INCLUDEDIR include)
endif()
if(NOT CMAKEDIR)
  set(CMAKEDIR share/cmake/rill)
endif()

file(REMOVE_RECURSE "${PREFIX}")
set(args --install "${RILL_BINARY_DIR}" --prefix "${PREFIX}")
if(BUILD_TYPE)
  list(APPEND args --config "${BUILD_TYPE}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" ${args} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake ${args} failed (${rc})")
endif()

foreach(f "${INCLUDEDIR}/rill/rill.hpp"
          "${CMAKEDIR}/rillConfig.cmake"
          "${CMAKEDIR}/rillConfigVersion.cmake"
          "${CMAKEDIR}/rillTargets.cmake")
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "not installed: ${PREFIX}/${f}")
  endif()
endforeach()

# Only the public headers get installed: no test support, no generated files.
file(GLOB_RECURSE installed RELATIVE "${PREFIX}/${INCLUDEDIR}" "${PREFIX}/${INCLUDEDIR}/*")
foreach(f IN LISTS installed)
  if(NOT f MATCHES "^rill/.*\\.(hpp|h)$")
    message(FATAL_ERROR "unexpected file installed under ${INCLUDEDIR}/: ${f}")
  endif()
endforeach()
message(STATUS "installed rill into ${PREFIX}")
