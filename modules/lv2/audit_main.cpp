// lv2-audit's main(): the real-time audit of an installed LV2 plugin (see
// audit.hpp). Installed to libexec/rackd under a name that does not match
// rackd-*, so the module registry does not take it for a module type.
#include "modules/lv2/audit.hpp"

int main(int argc, char** argv) { return rackd::lv2::audit_main(argc, argv); }
