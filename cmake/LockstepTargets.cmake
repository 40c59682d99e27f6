# lockstep_library(NAME SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# One library per subsystem: lockstep_NAME, aliased lockstep::NAME. Sources under src/ include
# each other as "subsystem/file.h"; the installed API lives in include/lockstep/.
function(lockstep_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(lockstep_${name} STATIC ${ARG_SOURCES})
  add_library(lockstep::${name} ALIAS lockstep_${name})
  target_include_directories(lockstep_${name} PUBLIC
    "${PROJECT_SOURCE_DIR}/include" "${PROJECT_SOURCE_DIR}/src")
  target_link_libraries(lockstep_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# lockstep_test(NAME SOURCES ... DEPS ... [PROPERTY] [SERIAL])
# One GoogleTest binary per subsystem; ctest lists every test case by name. SERIAL: its tests run
# alone, for load tests whose bounds assume the machine to themselves.
function(lockstep_test name)
  cmake_parse_arguments(ARG "PROPERTY;SERIAL" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest_main GTest::gmock)
  if(ARG_PROPERTY)
    target_link_libraries(${name} PRIVATE rapidcheck rapidcheck_gtest)
    # At least 1,000 random cases per property; RC_PARAMS in the environment overrides.
    gtest_discover_tests(${name} PROPERTIES ENVIRONMENT "RC_PARAMS=max_success=1000"
                         DISCOVERY_TIMEOUT 60)
  elseif(ARG_SERIAL)
    gtest_discover_tests(${name} PROPERTIES RUN_SERIAL TRUE DISCOVERY_TIMEOUT 60)
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60)
  endif()
endfunction()
