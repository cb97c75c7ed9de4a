//! Writes whose callers give up: a real `wenda serve` process takes Ingest
//! and Delete calls with random deadlines (10 to 120 ms, so many end while
//! their write is being committed) and SIGKILL at random moments. Whatever
//! the callers do, every document holds exactly its own passages, `Info`
//! agrees with the documents, every document is findable, and nothing
//! acknowledged is lost, on the live server and after each restart.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use wenda::proto::{self, retrieval_client::RetrievalClient};

use crate::common;
use crate::processes::{ServeProcess, list_documents, top_lexical_doc, wait_serving};

/// A small xorshift generator: the test's random choices, repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the test knows of one document id.
#[derive(Debug, Default, Clone)]
struct Known {
    text: String,
    /// An Ingest of it was acknowledged.
    ingested: bool,
    /// A Delete of it was sent (acknowledged or not).
    delete_sent: bool,
    /// A Delete of it was acknowledged.
    deleted: bool,
}

/// A document of 1 to about 4 passages, with a marker word found nowhere else.
fn document_text(n: usize, sentences: usize) -> String {
    let mut text = format!("Tài liệu số {n} mang mã mk{n}q. ");
    for i in 0..sentences {
        text.push_str(&format!(
            "Sentence {i} of record {n} describes rivers, bridges, harbours and the \
             weather along the coast in some detail. "
        ));
    }
    text
}

/// What became of a write sent with a deadline.
#[derive(PartialEq)]
enum Outcome {
    Acknowledged,
    /// Ended by its deadline (or turned away): the write may or may not
    /// have happened.
    CutShort,
    /// The server is gone (killed).
    Gone,
}

fn outcome<T>(result: Result<Result<T, tonic::Status>, tokio::time::error::Elapsed>) -> Outcome {
    match result {
        Ok(Ok(_)) => Outcome::Acknowledged,
        Err(_) => Outcome::CutShort,
        Ok(Err(status)) => match status.code() {
            Code::Unavailable | Code::Unknown => Outcome::Gone,
            Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => Outcome::CutShort,
            _ => panic!("unexpected error: {status:?}"),
        },
    }
}

/// Sends `ops` random writes with random deadlines; stops early when the
/// server is gone (a kill). Returns false when it stopped early.
async fn random_writes(
    client: &mut RetrievalClient<Channel>,
    rng: &mut Rng,
    known: &mut BTreeMap<String, Known>,
    next_id: &mut usize,
    ops: usize,
    deletes: &mut usize,
) -> bool {
    for _ in 0..ops {
        let deadline = Duration::from_millis(10 + rng.below(111));
        let live: Vec<String> = known
            .iter()
            .filter(|(_, k)| !k.delete_sent)
            .map(|(id, _)| id.clone())
            .collect();
        if !live.is_empty() && rng.below(4) == 0 {
            let id = live[rng.below(live.len() as u64) as usize].clone();
            known.get_mut(&id).unwrap().delete_sent = true;
            *deletes += 1;
            let mut request = tonic::Request::new(proto::DeleteRequest {
                ids: vec![id.clone()],
            });
            request.set_timeout(deadline);
            match outcome(tokio::time::timeout(deadline, client.delete(request)).await) {
                Outcome::Acknowledged => known.get_mut(&id).unwrap().deleted = true,
                Outcome::CutShort => {}
                Outcome::Gone => return false,
            }
        } else {
            let n = *next_id;
            *next_id += 1;
            let id = format!("cx{n}");
            let text = document_text(n, 1 + rng.below(10) as usize);
            known.insert(
                id.clone(),
                Known {
                    text: text.clone(),
                    ..Default::default()
                },
            );
            let mut request = tonic::Request::new(proto::IngestRequest {
                documents: vec![proto::Document {
                    id: id.clone(),
                    text,
                    ..Default::default()
                }],
            });
            request.set_timeout(deadline);
            match outcome(tokio::time::timeout(deadline, client.ingest(request)).await) {
                Outcome::Acknowledged => known.get_mut(&id).unwrap().ingested = true,
                Outcome::CutShort => {}
                Outcome::Gone => return false,
            }
        }
    }
    true
}

/// Waits until every write the server accepted has finished: a write
/// without a deadline queues behind them (one writer at a time, in order).
async fn settle(client: &mut RetrievalClient<Channel>) {
    for _ in 0..600 {
        match client
            .delete(proto::DeleteRequest {
                ids: vec!["settle/none".into()],
            })
            .await
        {
            Ok(_) => return,
            Err(s) if s.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("settling write failed: {s:?}"),
        }
    }
    panic!("writes never settled");
}

/// Checks the invariants on a serving process; returns the documents stored.
async fn check(client: &mut RetrievalClient<Channel>, known: &BTreeMap<String, Known>) -> usize {
    let list = list_documents(client).await;
    let mut chunks = 0u64;
    for d in &list.documents {
        let k = known
            .get(&d.id)
            .unwrap_or_else(|| panic!("{} was never sent", d.id));
        assert!(
            !k.deleted,
            "{} was deleted (acknowledged) but is there",
            d.id
        );
        let doc = client
            .get_document(proto::GetDocumentRequest { id: d.id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(doc.text, k.text, "{}: text", d.id);
        assert!(d.chunks > 0, "{} has no passages", d.id);
        assert_eq!(doc.passages.len() as u32, d.chunks, "{}: passages", d.id);
        for (i, p) in doc.passages.iter().enumerate() {
            let c = p.citation.as_ref().unwrap();
            assert_eq!(c.doc_id, d.id, "{} holds a passage of {}", d.id, c.doc_id);
            assert_eq!(c.chunk_index as usize, i, "{}: passage order", d.id);
            assert_eq!(
                p.text,
                common::char_slice(&doc.text, c.char_start as usize, c.char_end as usize),
                "{}: passage {i} is not its own text",
                d.id
            );
        }
        chunks += d.chunks as u64;
        // Findable by the marker only it holds.
        let n = &d.id[2..];
        assert_eq!(
            top_lexical_doc(client, &format!("mk{n}q")).await,
            Some(d.id.clone()),
            "{} is not findable",
            d.id
        );
    }
    // Nothing acknowledged is lost.
    for (id, k) in known {
        if k.ingested && !k.delete_sent {
            assert!(
                list.documents.iter().any(|d| &d.id == id),
                "{id} was acknowledged and is lost"
            );
        }
    }
    let info = client
        .info(proto::InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        info.documents,
        list.documents.len() as u64,
        "Info.documents"
    );
    assert_eq!(
        info.passages, chunks,
        "Info.passages against the sum of chunks"
    );
    list.documents.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_writes_and_sigkill_never_mix_documents() {
    let data = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut known = BTreeMap::new();
    let mut next_id = 0usize;
    let (mut cancelled, mut kills, mut deletes) = (0usize, 0usize, 0usize);
    let rounds = 4;
    for round in 0..rounds {
        let mut server = ServeProcess::start_with_args(data.path(), None, &[]);
        wait_serving(&server.url()).await;
        let mut client = RetrievalClient::connect(server.url()).await.unwrap();
        // Every restart starts from a consistent store.
        let stored = check(&mut client, &known).await;
        let before = known.values().filter(|k| k.ingested).count();
        let sent = next_id;
        assert!(
            random_writes(
                &mut client,
                &mut rng,
                &mut known,
                &mut next_id,
                50,
                &mut deletes
            )
            .await
        );
        cancelled += (next_id - sent) - (known.values().filter(|k| k.ingested).count() - before);
        // The live server agrees with itself once the writes have finished.
        settle(&mut client).await;
        check(&mut client, &known).await;
        if round + 1 == rounds {
            // A clean stop and one more restart: the same documents.
            let _ = Command::new("kill")
                .args(["-TERM", &server.child.id().to_string()])
                .status();
            let _ = server.child.wait();
            let server = ServeProcess::start_with_args(data.path(), None, &[]);
            wait_serving(&server.url()).await;
            let mut client = RetrievalClient::connect(server.url()).await.unwrap();
            let after = check(&mut client, &known).await;
            eprintln!("round {round}: {stored} documents at start, {after} after a clean restart");
            break;
        }
        // Then more writes with deadlines, and a SIGKILL among them.
        let pid = server.child.id();
        let kill_after = Duration::from_millis(100 + rng.below(900));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        });
        random_writes(
            &mut client,
            &mut rng,
            &mut known,
            &mut next_id,
            200,
            &mut deletes,
        )
        .await;
        killer.join().unwrap();
        let _ = server.child.wait();
        kills += 1;
        eprintln!("round {round}: {stored} documents at start; killed after {kill_after:?}");
    }
    let ingested = known.values().filter(|k| k.ingested).count();
    eprintln!(
        "{next_id} documents written and {deletes} deletes sent, {ingested} ingests acknowledged, \
         {cancelled} ingests cut short by their deadline, {kills} kills: 0 lost, 0 corrupted"
    );
    assert!(
        cancelled > 10,
        "only {cancelled} ingests were cut short: the test proved little"
    );
}
