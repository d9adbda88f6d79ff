//! Image pinning, the I/O half: what the engine has for each image a stack names
//! ([`Engine::image_index`], one inspect per distinct image, all at once), and the desired state
//! pinned with it ([`Engine::pin_images`]; the rules are in [`berth_plan::image_pin`]).

use crate::{Engine, EngineError};
use berth_plan::Desired;
use berth_plan::image_pin::{self, ImageIndex, LocalImage, Pin};
use std::collections::BTreeMap;

impl Engine {
    /// Inspects every image in `images` concurrently. An image the engine does not have maps to `None`.
    pub async fn image_index(&self, images: impl IntoIterator<Item = String>) -> Result<ImageIndex, EngineError> {
        let d = self.docker();
        let lookups = images.into_iter().map(|image| async move {
            match d.inspect_image(&image).await {
                Ok(i) => Ok((
                    image,
                    Some(LocalImage { id: i.id.unwrap_or_default(), repo_digests: i.repo_digests.unwrap_or_default() }),
                )),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok((image, None)),
                Err(source) => Err(EngineError::Api { call: "inspect image", source }),
            }
        });
        futures_util::future::try_join_all(lookups).await.map(|v| v.into_iter().collect())
    }

    /// Pins each service of `desired` to the image its reference names on this engine now (by repo
    /// digest, or by ID for an image that exists only here). Returns, per full service name, the
    /// reference the file named and its pin (unchanged services are not listed).
    pub async fn pin_images(&self, desired: &mut Desired) -> Result<BTreeMap<String, (String, Pin)>, EngineError> {
        let wanted = image_pin::images_to_resolve(desired);
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let index = self.image_index(wanted).await?;
        Ok(image_pin::pin_images(desired, &index))
    }
}
