//! `--anchor` and `--sign-key`: where the ledger's heads go, and the key that signs them.

use crate::cli::AnchorArgs;
use anyhow::{Context, Result};
use aws_adapters::anchor::{KmsSigner, S3Anchor};
use indexer::anchor::{AnchorStore, FolderAnchor, SignatureCheck, Signer};
use indexer::store::Writer;

/// An anchor location and its signer, with the runtime their AWS calls block on.
pub struct Anchor {
    /// Kept alive while the store and the signer are used.
    _rt: Option<tokio::runtime::Runtime>,
    /// Where heads are.
    pub store: Box<dyn AnchorStore>,
    /// Signs and checks heads.
    pub signer: Option<KmsSigner>,
    /// The key given.
    pub key: Option<String>,
}

impl Anchor {
    /// What `args` name; `None` without `--anchor`.
    pub fn of(args: &AnchorArgs, retain_days: Option<u32>) -> Result<Option<Anchor>> {
        let Some(location) = &args.anchor else {
            return Ok(None);
        };
        let remote = location.starts_with("s3://") || args.sign_key.is_some();
        if retain_days.is_some() && !location.starts_with("s3://") {
            anyhow::bail!("--anchor-retain-days applies to an s3:// --anchor only");
        }
        // The engine calls the store from its own thread and blocks on this runtime's handle:
        // a runtime with a worker of its own drives the calls meanwhile.
        let rt = remote
            .then(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .context("starting the async runtime")
            })
            .transpose()?;
        let handle = rt.as_ref().map(|r| r.handle().clone());
        let store: Box<dyn AnchorStore> = match (location.strip_prefix("s3://"), &handle) {
            (Some(_), Some(h)) => {
                let client = h.block_on(aws_adapters::objects::s3_client());
                Box::new(
                    S3Anchor::new(client, location, retain_days, h.clone())
                        .map_err(anyhow::Error::msg)?,
                )
            }
            _ => Box::new(FolderAnchor::new(std::path::Path::new(location))),
        };
        let signer = match (&args.sign_key, handle) {
            (Some(key), Some(h)) => Some(KmsSigner::new(None, key, h)),
            _ => None,
        };
        Ok(Some(Anchor {
            _rt: rt,
            store,
            signer,
            key: args.sign_key.clone(),
        }))
    }

    /// Anchor every commit of `writer` from now on; the runtime returned must outlive it.
    pub fn attach(self, writer: &mut Writer) -> Result<Option<tokio::runtime::Runtime>> {
        let signer = self.signer.map(|s| Box::new(s) as Box<dyn Signer>);
        writer.anchor_to(self.store, signer)?;
        Ok(self._rt)
    }

    /// What `verify` checks the ledger against.
    pub fn check(&mut self) -> indexer::verify::AnchorCheck<'_> {
        indexer::verify::AnchorCheck {
            store: self.store.as_mut(),
            signatures: self.signer.as_mut().map(|s| s as &mut dyn SignatureCheck),
            key: self.key.clone(),
        }
    }
}
