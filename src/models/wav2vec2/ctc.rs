//! Greedy CTC decoding with a checkpoint's vocabulary, as transformers'
//! `Wav2Vec2CTCTokenizer` decodes: repeated tokens merge, the blank (pad) token separates
//! them and is dropped, the word delimiter becomes a space.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::models::ModelError;

/// A checkpoint's output vocabulary.
#[derive(Debug, Clone)]
pub struct CtcVocab {
    tokens: Vec<String>,
    blank: u32,
    delimiter: Option<u32>,
    /// Tokens left out of text: `<s>`, `</s>`, `<unk>` and other special tokens.
    skipped: HashSet<u32>,
    lower_case: bool,
}

/// A word and the frames it spans (end exclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct WordFrames {
    pub word: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub words: Vec<WordFrames>,
}

#[derive(Deserialize, Default)]
struct TokenizerConfig {
    pad_token: Option<TokenName>,
    bos_token: Option<TokenName>,
    eos_token: Option<TokenName>,
    unk_token: Option<TokenName>,
    word_delimiter_token: Option<TokenName>,
    #[serde(default)]
    do_lower_case: bool,
    target_lang: Option<String>,
}

/// transformers writes special tokens as plain strings or as `{"content": ...}` objects.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenName {
    Plain(String),
    Added { content: String },
}

impl TokenName {
    fn text(&self) -> &str {
        match self {
            TokenName::Plain(s) => s,
            TokenName::Added { content } => content,
        }
    }
}

impl CtcVocab {
    /// Reads `vocab.json` and, if present, `tokenizer_config.json`.
    pub fn load(vocab: &Path, tokenizer_config: Option<&Path>) -> Result<Self, ModelError> {
        let config: TokenizerConfig = match tokenizer_config {
            Some(path) => crate::models::error::read_json(path)?,
            None => TokenizerConfig::default(),
        };
        let raw: serde_json::Value = crate::models::error::read_json(vocab)?;
        let map = match &raw {
            serde_json::Value::Object(map) if map.values().all(|v| v.is_object()) => {
                // Multilingual checkpoints keep one vocabulary per language.
                let Some(lang) = &config.target_lang else {
                    return Err(ModelError::config(
                        vocab,
                        "holds one vocabulary per language but tokenizer_config.json names no target_lang",
                    ));
                };
                map.get(lang).cloned().ok_or_else(|| {
                    ModelError::config(vocab, format!("has no vocabulary for target_lang `{lang}`"))
                })?
            }
            _ => raw.clone(),
        };
        let entries: BTreeMap<String, u32> = serde_json::from_value(map).map_err(|e| {
            ModelError::config(vocab, format!("expected a map of token to id: {e}"))
        })?;
        Self::from_entries(entries, &config).map_err(|m| ModelError::config(vocab, m))
    }

    fn from_entries(
        entries: BTreeMap<String, u32>,
        config: &TokenizerConfig,
    ) -> Result<Self, String> {
        let size = entries.values().max().map_or(0, |&m| m as usize + 1);
        if size == 0 {
            return Err("the vocabulary is empty".into());
        }
        let mut tokens = vec![String::new(); size];
        for (token, id) in &entries {
            tokens[*id as usize] = token.clone();
        }
        let id_of = |name: &str| entries.get(name).copied();
        let named = |t: &Option<TokenName>, default: &str| {
            t.as_ref()
                .map_or_else(|| default.to_string(), |t| t.text().to_string())
        };
        let pad = named(&config.pad_token, "<pad>");
        let blank =
            id_of(&pad).ok_or_else(|| format!("the pad (CTC blank) token `{pad}` is not in it"))?;
        let delimiter = id_of(&named(&config.word_delimiter_token, "|"));
        let skipped = [&config.bos_token, &config.eos_token, &config.unk_token]
            .iter()
            .zip(["<s>", "</s>", "<unk>"])
            .filter_map(|(t, default)| id_of(&named(t, default)))
            .collect();
        Ok(CtcVocab {
            tokens,
            blank,
            delimiter,
            skipped,
            lower_case: config.do_lower_case,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Decodes one best token id per frame.
    pub fn decode(&self, ids: &[u32]) -> Transcript {
        // Runs of one token, then blanks and special tokens out: what is left are the
        // characters with the frames they span.
        let mut chars: Vec<(u32, usize, usize)> = Vec::new();
        let mut start = 0;
        for (i, &id) in ids.iter().enumerate() {
            if i + 1 == ids.len() || ids[i + 1] != id {
                if id != self.blank && !self.skipped.contains(&id) {
                    chars.push((id, start, i + 1));
                }
                start = i + 1;
            }
        }
        let mut text = String::new();
        let mut words: Vec<WordFrames> = Vec::new();
        let mut in_word = false;
        for &(id, start, end) in &chars {
            if Some(id) == self.delimiter {
                text.push(' ');
                in_word = false;
                continue;
            }
            let token = self.tokens.get(id as usize).map_or("", String::as_str);
            let token = if self.lower_case {
                token.to_lowercase()
            } else {
                token.to_string()
            };
            text.push_str(&token);
            match words.last_mut() {
                Some(word) if in_word => {
                    word.word.push_str(&token);
                    word.end = end;
                }
                _ => words.push(WordFrames {
                    word: token,
                    start,
                    end,
                }),
            }
            in_word = true;
        }
        Transcript {
            text: text.trim().to_string(),
            words,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> CtcVocab {
        let entries: BTreeMap<String, u32> = ["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "L"]
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        CtcVocab::from_entries(entries, &TokenizerConfig::default()).unwrap()
    }

    #[test]
    fn merges_repeats_and_keeps_letters_the_blank_separates() {
        // B A L <pad> L | A B -> "BALL AB"
        let ids = [6, 6, 5, 7, 7, 0, 7, 4, 4, 5, 0, 6, 6];
        let t = vocab().decode(&ids);
        assert_eq!(t.text, "BALL AB");
        assert_eq!(
            t.words,
            vec![
                WordFrames {
                    word: "BALL".into(),
                    start: 0,
                    end: 7
                },
                WordFrames {
                    word: "AB".into(),
                    start: 9,
                    end: 13
                },
            ]
        );
    }

    #[test]
    fn special_tokens_and_edges_are_dropped() {
        let ids = [4, 1, 5, 3, 5, 2, 4, 0];
        assert_eq!(vocab().decode(&ids).text, "AA");
        assert_eq!(vocab().decode(&[]).text, "");
        assert_eq!(vocab().decode(&[0, 0, 4]).text, "");
    }

    #[test]
    fn a_vocabulary_without_its_blank_is_refused() {
        let entries: BTreeMap<String, u32> = [("A".to_string(), 0)].into_iter().collect();
        let err = CtcVocab::from_entries(entries, &TokenizerConfig::default()).unwrap_err();
        assert!(err.contains("<pad>"), "{err}");
    }
}
