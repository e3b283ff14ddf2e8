// @ts-check
/**
 * The desktop window's extras: the first-run question (start at login?),
 * the Settings of this computer (autostart, data folder), and `tuber://join`
 * links opening the join form filled in. Nothing here runs in a browser.
 */
import * as api from './api.js';

/** @param {string} id @returns {any} */
const $ = (id) => /** @type {any} */ (document.getElementById(id));

/**
 * @param {{showView: (name: string) => void, attempt: <T>(fn: () => Promise<T>) => Promise<T | undefined>}} ui
 */
export function initDesktop(ui) {
  if (!api.desktop) return;
  $('hint-headless').hidden = true;
  $('desktop-form').hidden = false;

  /** @param {api.DesktopView} v */
  const render = (v) => {
    $('set-autostart').checked = v.autostart_enabled;
    if (document.activeElement !== $('set-data-dir')) $('set-data-dir').value = v.data_dir_next ?? v.data_dir;
    $('data-dir-note').textContent = v.data_dir_next
      ? `In use: ${v.data_dir}. Tuber uses ${v.data_dir_next} from its next start (quit it from the tray and start it again); move the old folder's contents there to keep this peer's identity and cache.`
      : `In use: ${v.data_dir}.`;
  };

  $('set-autostart').addEventListener('change', () => ui.attempt(async () => render(await api.setAutostart($('set-autostart').checked))));
  $('desktop-form').addEventListener('submit', (/** @type {SubmitEvent} */ e) => {
    e.preventDefault();
    ui.attempt(async () => render(await api.setDataDir($('set-data-dir').value)));
  });

  const dialog = /** @type {HTMLDialogElement} */ ($('first-run'));
  /** @param {boolean} yes */
  const answer = (yes) => ui.attempt(async () => { dialog.close(); render(await api.setAutostart(yes)); });
  $('first-run-yes').addEventListener('click', () => answer(true));
  $('first-run-no').addEventListener('click', () => answer(false));

  ui.attempt(async () => {
    const v = await api.desktopPrefs();
    render(v);
    if (v.autostart === null) dialog.showModal();
  });

  const takeLink = () => ui.attempt(async () => {
    const link = await api.takeJoinLink();
    if (!link) return;
    ui.showView('swarms');
    $('join-url').value = link.swarm;
    $('join-invite').value = link.invite ?? '';
    const note = $('join-note');
    note.textContent = `A link asks to join ${link.swarm}${link.invite ? ' with an invite' : ''}. Check the address, then press Join.`;
    note.hidden = false;
    /** @type {HTMLButtonElement} */ ($('join-form').querySelector('button[type=submit]')).focus();
  });
  api.onJoinLink(takeLink);
  takeLink();
}
