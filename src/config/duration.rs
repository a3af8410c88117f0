//! Duration strings ("90s", "15m", "8h").
