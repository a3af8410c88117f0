//! Policy state: where it comes from (file / http), how it refreshes, and the
//! atomically swapped snapshot `authorize` reads. (Being written.)
