# smaugd, the orchestrator daemon: start-up and shutdown (server/main.c),
# its settings (settings.c), its data directory guards (datadir.c) and its
# transport security (tls.c).
if(TARGET smaug_api)
  add_executable(smaugd ${CMAKE_CURRENT_SOURCE_DIR}/main.c
                        ${CMAKE_CURRENT_SOURCE_DIR}/settings.c
                        ${CMAKE_CURRENT_SOURCE_DIR}/datadir.c
                        ${CMAKE_CURRENT_SOURCE_DIR}/tls.c)
  target_link_libraries(smaugd PRIVATE smaug_api smaug_auth_cmd PkgConfig::JANSSON)
endif()
