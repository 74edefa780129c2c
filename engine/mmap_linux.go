package engine

import "syscall"

// populateFlag asks the kernel to map the whole snapshot at once when it
// is loaded, instead of one page fault per page as the cursor walks it.
const populateFlag = syscall.MAP_POPULATE
