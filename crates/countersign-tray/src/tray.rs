//! Publishes a [`TrayModel`] as a StatusNotifierItem on the session bus (`ksni`: D-Bus only,
//! no GTK, no indicator library). A panel that starts later still gets the item; a session
//! without any panel is logged and survived (notifications still work).

use crate::model::{TrayAction, TrayIconKind, TrayModel};
use ksni::menu::{MenuItem, StandardItem};
use ksni::TrayMethods;
use tokio::sync::mpsc::UnboundedSender;

/// A tray icon's pixels as the StatusNotifierItem spec wants them (ARGB32, big-endian).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixmap {
    width: i32,
    height: i32,
    argb: Vec<u8>,
}

/// Why an icon could not be decoded (they are built in, so this is a build mistake).
#[derive(Debug, thiserror::Error)]
pub enum IconError {
    /// Not a PNG the decoder reads.
    #[error("the tray icon is not a readable PNG: {0}")]
    Png(#[from] png::DecodingError),
    /// Not 8-bit RGBA.
    #[error("the tray icon is not 8-bit RGBA")]
    NotRgba,
    /// Larger than a tray icon can be.
    #[error("the tray icon is too large")]
    TooLarge,
}

impl Pixmap {
    /// Decodes one of the built-in PNGs.
    pub fn decode(png_file: &[u8]) -> Result<Pixmap, IconError> {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png_file)).read_info()?;
        let mut rgba = vec![0; reader.output_buffer_size().ok_or(IconError::TooLarge)?];
        let frame = reader.next_frame(&mut rgba)?;
        if frame.color_type != png::ColorType::Rgba || frame.bit_depth != png::BitDepth::Eight {
            return Err(IconError::NotRgba);
        }
        rgba.truncate(frame.buffer_size());
        let argb = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[3], p[0], p[1], p[2]])
            .collect();
        Ok(Pixmap {
            width: i32::try_from(frame.width).map_err(|_| IconError::TooLarge)?,
            height: i32::try_from(frame.height).map_err(|_| IconError::TooLarge)?,
            argb,
        })
    }

    fn icon(&self) -> ksni::Icon {
        ksni::Icon {
            width: self.width,
            height: self.height,
            data: self.argb.clone(),
        }
    }
}

/// The three icons, decoded once.
#[derive(Clone, Debug)]
pub struct Icons {
    idle: Pixmap,
    waiting: Pixmap,
    offline: Pixmap,
}

impl Icons {
    /// Decodes the built-in icons.
    pub fn built_in() -> Result<Icons, IconError> {
        Ok(Icons {
            idle: Pixmap::decode(TrayIconKind::Idle.png())?,
            waiting: Pixmap::decode(TrayIconKind::Waiting.png())?,
            offline: Pixmap::decode(TrayIconKind::Offline.png())?,
        })
    }

    fn of(&self, kind: TrayIconKind) -> &Pixmap {
        match kind {
            TrayIconKind::Idle => &self.idle,
            TrayIconKind::Waiting => &self.waiting,
            TrayIconKind::Offline => &self.offline,
        }
    }
}

/// The item as the panel reads it: the current model, and where clicks go.
pub struct TrayItem {
    model: TrayModel,
    icons: Icons,
    actions: UnboundedSender<TrayAction>,
}

impl TrayItem {
    fn act(&self, action: TrayAction) {
        let _ = self.actions.send(action);
    }

    fn entry(label: &str, enabled: bool, action: Option<TrayAction>) -> MenuItem<Self> {
        MenuItem::Standard(StandardItem {
            // dbusmenu reads "_" as an access-key mark: keep underscores in ids and titles.
            label: label.replace('_', "__"),
            enabled,
            activate: Box::new(move |tray: &mut Self| {
                if let Some(action) = action.clone() {
                    tray.act(action);
                }
            }),
            ..Default::default()
        })
    }
}

impl ksni::Tray for TrayItem {
    fn id(&self) -> String {
        "countersign".into()
    }

    fn title(&self) -> String {
        self.model.tooltip.clone()
    }

    fn category(&self) -> ksni::Category {
        ksni::Category::Communications
    }

    fn status(&self) -> ksni::Status {
        match self.model.icon {
            TrayIconKind::Idle => ksni::Status::Active,
            TrayIconKind::Waiting | TrayIconKind::Offline => ksni::Status::NeedsAttention,
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        vec![self.icons.of(self.model.icon).icon()]
    }

    fn attention_icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icon_pixmap()
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: self.model.tooltip.clone(),
            ..Default::default()
        }
    }

    /// A left click where the panel sends one: open the window.
    fn activate(&mut self, _x: i32, _y: i32) {
        self.act(TrayAction::Open);
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        let m = &self.model;
        let mut menu = vec![
            Self::entry("Open Countersign", true, Some(TrayAction::Open)),
            MenuItem::Separator,
            Self::entry(&m.headline, false, None),
        ];
        for entry in &m.entries {
            menu.push(Self::entry(
                &entry.label,
                true,
                TrayAction::from_id(&entry.id),
            ));
        }
        menu.extend([
            MenuItem::Separator,
            Self::entry(&m.connection, false, None),
            Self::entry(&m.notifications, false, None),
            Self::entry(
                "Pause notifications for 1 hour",
                m.can_pause,
                Some(TrayAction::PauseHour),
            ),
            Self::entry(
                "Pause until tomorrow 08:00",
                m.can_pause,
                Some(TrayAction::PauseTomorrow),
            ),
            Self::entry("Resume notifications", m.paused, Some(TrayAction::Resume)),
            MenuItem::Separator,
            Self::entry("Quit Countersign", true, Some(TrayAction::Quit)),
        ]);
        menu
    }

    fn watcher_online(&self) {
        eprintln!("countersign-tray: a tray host appeared; the item is shown");
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        eprintln!(
            "countersign-tray: no tray host ({reason:?}); notifications still work, and the item \
             appears when a panel starts"
        );
        true
    }
}

/// Why there is no tray.
#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    /// The item could not be put on the bus.
    #[error("no tray: {0}")]
    Bus(#[from] ksni::Error),
    /// A built-in icon is unreadable.
    #[error("no tray: {0}")]
    Icon(#[from] IconError),
}

/// The published tray.
pub struct Tray {
    handle: ksni::Handle<TrayItem>,
}

impl Tray {
    /// Publishes `model`; menu clicks go to `actions`. No panel yet is not an error: the item
    /// registers when one appears.
    pub async fn publish(
        model: TrayModel,
        actions: UnboundedSender<TrayAction>,
    ) -> Result<Tray, TrayError> {
        let item = TrayItem {
            model,
            icons: Icons::built_in()?,
            actions,
        };
        let handle = item.assume_sni_available(true).spawn().await?;
        Ok(Tray { handle })
    }

    /// Shows `model` (the panel is told only what changed).
    pub async fn show(&self, model: TrayModel) {
        self.handle.update(|item| item.model = model).await;
    }

    /// Takes the item off the bus.
    pub async fn remove(self) {
        self.handle.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_icons_decode_to_argb_of_their_size() {
        let icons = Icons::built_in().unwrap();
        for kind in [
            TrayIconKind::Idle,
            TrayIconKind::Waiting,
            TrayIconKind::Offline,
        ] {
            let p = icons.of(kind);
            assert!(p.width > 0 && p.height > 0);
            assert_eq!(p.argb.len(), (p.width * p.height * 4) as usize);
        }
        assert_ne!(icons.idle, icons.waiting);
        assert_ne!(icons.waiting, icons.offline);
    }

    #[test]
    fn rgba_pixels_become_argb() {
        let mut file = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut file, 1, 1);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&[10, 20, 30, 40]).unwrap();
        }
        let p = Pixmap::decode(&file).unwrap();
        assert_eq!(p.argb, [40, 10, 20, 30]);
        assert!(Pixmap::decode(b"not a png").is_err());
    }
}
