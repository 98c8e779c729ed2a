# smaugd, the orchestrator daemon (server/main.c; its transport security,
# server/tls.c).
if(TARGET smaug_api)
  add_executable(smaugd ${CMAKE_CURRENT_SOURCE_DIR}/main.c
                        ${CMAKE_CURRENT_SOURCE_DIR}/tls.c)
  target_link_libraries(smaugd PRIVATE smaug_api smaug_auth_cmd PkgConfig::JANSSON)
endif()
