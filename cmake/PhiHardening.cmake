# Warnings and hardening for every target: the flags OpenSSH, systemd and Debian's hardening=+all use.
add_compile_options(
  -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes
  -Wpointer-arith -Wvla -Wcast-qual -Wundef
  -fstack-protector-strong -fstack-clash-protection -fno-common)
if(PHI_WERROR)
  add_compile_options(-Werror)
endif()

if(PHI_SANITIZE)
  string(REPLACE "," ";" _phi_sans "${PHI_SANITIZE}")
  foreach(_s IN LISTS _phi_sans)
    add_compile_options(-fsanitize=${_s})
    add_link_options(-fsanitize=${_s})
  endforeach()
  add_compile_options(-fno-omit-frame-pointer -fno-sanitize-recover=all)
else()
  # _FORTIFY_SOURCE needs optimisation and conflicts with ASan's interceptors.
  add_compile_options($<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=3>)
endif()

add_link_options(-Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack -Wl,--as-needed)

# Shared objects loaded into sshd/sudo/every process must resolve every symbol at
# link time (-z defs). Sanitized builds leave the runtime symbols to the executable.
function(phi_module_link_options target map)
  target_link_options(${target} PRIVATE "-Wl,--version-script=${map}")
  if(NOT PHI_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,-z,defs)
  endif()
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${map}")
endfunction()
