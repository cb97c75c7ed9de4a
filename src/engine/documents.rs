//! Reading documents back: pages of summaries, one document with its
//! passages, and the counts `Info` reports.

use std::collections::BTreeMap;

use super::Engine;
use super::validate::{echo, validate_get, validate_list};
use crate::error::{Error, Result};
use crate::filter::Scope;
use crate::ingest;
use crate::store::StoredDocument;
use crate::types::{DocumentSummary, DocumentView, EngineInfo, limits};

impl Engine {
    /// Lists documents ordered by id, after `page_token` (the last id of the previous page).
    pub fn list_documents(
        &self,
        page_size: usize,
        page_token: &str,
        language: &str,
    ) -> Result<(Vec<DocumentSummary>, String)> {
        self.list_documents_within(page_size, page_token, language, &Scope::default())
    }

    /// [`list_documents`](Self::list_documents) of the documents inside `scope`.
    pub fn list_documents_within(
        &self,
        page_size: usize,
        page_token: &str,
        language: &str,
        scope: &Scope,
    ) -> Result<(Vec<DocumentSummary>, String)> {
        validate_list(page_size, language)?;
        let page_size = if page_size == 0 {
            limits::DEFAULT_PAGE_SIZE
        } else {
            page_size
        };
        let state = self.read_state();
        let start = if page_token.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Excluded(page_token.to_string())
        };
        let mut docs: Vec<DocumentSummary> = state
            .documents
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, d)| d)
            .filter(|d| language.is_empty() || d.language == language)
            .filter(|d| scope.admits(&d.metadata))
            .take(page_size + 1)
            .map(summary)
            .collect();
        let next = if docs.len() > page_size {
            docs.truncate(page_size);
            docs.last().map(|d| d.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((docs, next))
    }

    /// One document with its text and passages.
    pub fn get_document(&self, id: &str) -> Result<DocumentView> {
        self.get_document_within(id, &Scope::default())
    }

    /// [`get_document`](Self::get_document), not found outside `scope`.
    pub fn get_document_within(&self, id: &str, scope: &Scope) -> Result<DocumentView> {
        validate_get(id)?;
        let state = self.read_state();
        let doc = state
            .documents
            .get(id)
            .filter(|d| scope.admits(&d.metadata))
            .ok_or_else(|| Error::NotFound(format!("document {}", echo(id))))?;
        let passages = doc
            .passage_ids
            .iter()
            .filter_map(|pid| state.passages.get(pid).cloned())
            .collect();
        Ok(DocumentView {
            summary: summary(doc),
            text: doc.text.clone(),
            passages,
        })
    }

    /// Copies the database as of one commit to `to` (`Store::backup_to`),
    /// while searches and writes go on.
    pub async fn backup_to(&self, to: std::path::PathBuf) -> Result<crate::store::Copied> {
        let store = self.store.clone();
        super::blocking(move || store.backup_to(&to)).await?
    }

    pub fn info(&self) -> EngineInfo {
        self.info_within(&Scope::default())
    }

    /// [`info`](Self::info) with the counts of the documents inside `scope`
    /// only: a tenant learns nothing of another's corpus, not even its size.
    pub fn info_within(&self, scope: &Scope) -> EngineInfo {
        let state = self.read_state();
        let mut documents_per_language = BTreeMap::new();
        let (documents, passages, passages_per_language) = if scope.is_all() {
            let per_language = state
                .languages
                .iter()
                .map(|(language, n)| (language.clone(), *n as u64))
                .collect();
            (state.documents.len(), state.passages.len(), per_language)
        } else {
            let mut per_language: BTreeMap<String, u64> = BTreeMap::new();
            let (mut documents, mut passages) = (0, 0);
            for d in state
                .documents
                .values()
                .filter(|d| scope.admits(&d.metadata))
            {
                documents += 1;
                for p in d.passage_ids.iter().filter_map(|id| state.passages.get(id)) {
                    passages += 1;
                    *per_language.entry(p.language.clone()).or_insert(0) += 1;
                }
            }
            (documents, passages, per_language)
        };
        for d in state
            .documents
            .values()
            .filter(|d| scope.admits(&d.metadata))
        {
            *documents_per_language
                .entry(d.language.clone())
                .or_insert(0u64) += 1;
        }
        EngineInfo {
            model: self.embedder.manifest().name.clone(),
            dimension: self.embedder.manifest().dimension,
            documents,
            passages,
            passages_per_language,
            documents_per_language,
            index_build_id: format!(
                "g{}-{}",
                state.generation,
                self.embedder.manifest().fingerprint()
            ),
            index_kind: state.index.kind().to_string(),
            chunker_version: ingest::CHUNKER_VERSION.to_string(),
            store: self.store.kind().to_string(),
            applied_sequence: state.generation,
        }
    }
}

fn summary(d: &StoredDocument) -> DocumentSummary {
    DocumentSummary {
        id: d.id.clone(),
        source: d.source.clone(),
        title: d.title.clone(),
        language: d.language.clone(),
        published: d.published.clone(),
        chunks: d.passage_ids.len() as u32,
        chars: d.text.chars().count() as u64,
        content_hash: d.content_hash.clone(),
        url: d.url.clone(),
        metadata: d.metadata.clone(),
    }
}
