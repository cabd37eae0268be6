// One modal confirmation dialog (the native <dialog>: focus stays inside, Escape cancels, focus
// returns to the button that opened it). A stronger confirmation asks for a typed phrase.

/**
 * @param {HTMLDialogElement} dialog
 * @returns {(options: { title: string, text: string, action: string, phrase?: string }) => Promise<boolean>}
 */
export function createConfirm(dialog) {
  const title = /** @type {HTMLElement} */ (dialog.querySelector('#confirm-title'));
  const text = /** @type {HTMLElement} */ (dialog.querySelector('#confirm-text'));
  const typed = /** @type {HTMLElement} */ (dialog.querySelector('#confirm-typed'));
  const phraseEl = /** @type {HTMLElement} */ (dialog.querySelector('#confirm-phrase'));
  const input = /** @type {HTMLInputElement} */ (dialog.querySelector('#confirm-input'));
  const ok = /** @type {HTMLButtonElement} */ (dialog.querySelector('#confirm-ok'));
  const cancel = /** @type {HTMLButtonElement} */ (dialog.querySelector('#confirm-cancel'));

  return ({ title: heading, text: body, action, phrase }) =>
    new Promise((resolve) => {
      const opener = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
      title.textContent = heading;
      text.textContent = body;
      ok.textContent = action;
      typed.hidden = phrase === undefined;
      input.value = '';
      phraseEl.textContent = phrase ?? '';
      const matches = () => phrase === undefined || input.value.trim() === phrase;
      ok.disabled = !matches();

      const onInput = () => {
        ok.disabled = !matches();
      };
      const onKey = (/** @type {KeyboardEvent} */ e) => {
        if (e.key === 'Enter' && matches()) finish(true);
      };
      const onOk = () => finish(matches());
      const onCancel = () => finish(false);
      const onClose = () => finish(false);
      let done = false;
      /** @param {boolean} answer */
      function finish(answer) {
        if (done) return;
        done = true;
        input.removeEventListener('input', onInput);
        input.removeEventListener('keydown', onKey);
        ok.removeEventListener('click', onOk);
        cancel.removeEventListener('click', onCancel);
        dialog.removeEventListener('close', onClose);
        if (dialog.open) dialog.close();
        opener?.focus();
        resolve(answer);
      }
      input.addEventListener('input', onInput);
      input.addEventListener('keydown', onKey);
      ok.addEventListener('click', onOk);
      cancel.addEventListener('click', onCancel);
      // Escape closes the dialog: that is a "no".
      dialog.addEventListener('close', onClose);
      dialog.showModal();
      (phrase === undefined ? cancel : input).focus();
    });
}
