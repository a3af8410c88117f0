//! `authorize`: the tower layer that runs the policy engine for each request. (Being written.)
