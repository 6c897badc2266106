// Placeholder translation unit so the core library builds before the driver lands.
namespace sgdwalk { int core_placeholder() { return 0; } }
