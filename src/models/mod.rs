//! Neural models on candle (Wav2Vec2, AudioLDM).
