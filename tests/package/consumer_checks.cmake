# Checks shared by the consumer projects, run after rill has been made available.

if(NOT TARGET rill::rill)
  message(FATAL_ERROR "rill::rill is not defined")
endif()

# rill's own flags must never leak into consumers.
foreach(prop INTERFACE_COMPILE_OPTIONS INTERFACE_LINK_OPTIONS INTERFACE_COMPILE_DEFINITIONS)
  get_target_property(value rill::rill ${prop})
  if(value)
    message(FATAL_ERROR "rill::rill sets ${prop} = '${value}'")
  endif()
endforeach()

# As a subproject, rill builds nothing of its own and installs nothing.
foreach(opt RILL_BUILD_TESTS RILL_BUILD_EXAMPLES RILL_BUILD_BENCH RILL_BUILD_TOOLS RILL_INSTALL)
  if(${opt})
    message(FATAL_ERROR "${opt} is ON in a consumer project; it should default to OFF")
  endif()
endforeach()
foreach(tgt rill_warnings rill_sanitizers rill_dev)
  if(TARGET ${tgt})
    message(FATAL_ERROR "rill's internal target ${tgt} exists in a consumer project")
  endif()
endforeach()
