/*!
 * Clinic FAQ chat widget. Plain JavaScript, no build step, no dependencies.
 *
 * Embed with one tag (options are data attributes, all optional; see the README, "Chat widget"):
 *   <script src="https://faq.my-clinic.example/widget.js" async
 *           data-title="Ask our FAQ" data-clinic-name="My Clinic" data-color="#0b5cab"
 *           data-position="right" data-phone="+1 555 0100"
 *           data-contact-url="https://www.my-clinic.example/contact"></script>
 *
 * The widget lives in a Shadow DOM (the page's CSS does not reach it, its CSS does not leak out),
 * calls the service it was loaded from (or data-api) and never treats text from the API or the user
 * as HTML: every node is built with createElement and textContent.
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script || !script.src) {
    return; // not loaded through a <script src> tag: nothing to configure from
  }
  if (document.querySelector('clinic-faq-widget')) {
    return; // the tag is on the page twice: one widget is enough
  }

  var DEFAULT_COLOR = '#0b5cab';
  var MAX_QUESTION_CHARS = 1000; // the service's default QA_MAX_QUESTION_CHARS
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var ICON_CHAT = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z';
  var ICON_CLOSE = 'M6 6l12 12M18 6L6 18';
  var MAX_TURNS = 3; // earlier turns sent with a question (the API's limit)

  var config = readConfig(script);
  var state = {
    open: false,
    busy: false,
    turn: 0, // bumped by "clear": replies to an older conversation are dropped
    history: [], // the conversation's last turns {question, answer_id}, sent with each question; page memory only
    requests: [], // AbortControllers of requests in flight
    ids: 0
  };

  // ---------------------------------------------------------------- configuration

  function readConfig(tag) {
    var data = tag.dataset;
    var scriptUrl = new URL(tag.src, document.baseURI);
    var apiBase = new URL('.', scriptUrl); // the folder widget.js was served from
    if (data.api) {
      var override = httpUrl(data.api, document.baseURI);
      if (override) {
        apiBase = new URL(override.replace(/\/?$/, '/'));
      } else {
        warn('data-api must be an http(s) URL; using ' + apiBase.href);
      }
    }
    var color = (data.color || '').trim();
    if (color && !/^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(color)) {
      warn('data-color must be a hex colour such as #0b5cab; using the default');
      color = '';
    }
    var timeout = Number(data.timeout);
    var contactUrl = data.contactUrl ? httpUrl(data.contactUrl, document.baseURI) : null;
    if (data.contactUrl && !contactUrl) {
      warn('data-contact-url must be an http(s) URL or a path on this site; ignored');
    }
    var phone = (data.phone || '').trim();
    if (!phone && !contactUrl) {
      warn('set data-phone or data-contact-url so that patients can reach the clinic');
    }
    return {
      apiBase: apiBase,
      stylesheet: new URL('widget.css', scriptUrl).href,
      title: text(data.title) || 'Clinic FAQ',
      clinicName: text(data.clinicName),
      color: color || DEFAULT_COLOR,
      position: data.position === 'left' ? 'left' : 'right',
      phone: phone,
      contactUrl: contactUrl,
      contactLabel: text(data.contactLabel) || 'Contact the clinic',
      timeoutMs: timeout > 0 && timeout <= 120 ? timeout * 1000 : 15000
    };
  }

  function text(value) {
    return typeof value === 'string' ? value.trim() : '';
  }

  function warn(message) {
    if (window.console && console.warn) {
      console.warn('[clinic FAQ widget] ' + message);
    }
  }

  /** The absolute URL when value is an http or https address (relative ones resolve against base), else null. */
  function httpUrl(value, base) {
    if (typeof value !== 'string' || !value.trim()) {
      return null;
    }
    try {
      var url = new URL(value.trim(), base);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  // ---------------------------------------------------------------- colour contrast (WCAG 2)

  function luminance(hex) {
    var digits = hex.slice(1);
    if (digits.length === 3) {
      digits = digits.replace(/./g, '$&$&');
    }
    var channels = [0, 2, 4].map(function (i) {
      var c = parseInt(digits.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  }

  function contrast(a, b) {
    var la = luminance(a);
    var lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  /** Text colour for the accent background: white or black, whichever contrasts more (never under 4.5:1). */
  function textOn(background) {
    return contrast(background, '#ffffff') >= contrast(background, '#000000') ? '#ffffff' : '#000000';
  }

  // ---------------------------------------------------------------- DOM helpers (text goes in as textContent only)

  function el(tag, className, content) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (content !== undefined && content !== null) {
      node.textContent = String(content);
    }
    return node;
  }

  function button(label, className, onClick) {
    var node = el('button', className, label);
    node.type = 'button';
    node.addEventListener('click', onClick);
    return node;
  }

  function link(label, href, external) {
    var node = el('a', null, label);
    node.href = href;
    if (external) {
      node.target = '_blank';
      node.rel = 'noopener noreferrer';
      node.appendChild(el('span', 'qa-visually-hidden', ' (opens in a new tab)'));
    }
    return node;
  }

  function uniqueId(prefix) {
    state.ids += 1;
    return prefix + state.ids;
  }

  function icon(path) {
    var svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', 'qa-icon');
    var shape = document.createElementNS(SVG_NS, 'path');
    shape.setAttribute('d', path);
    svg.appendChild(shape);
    return svg;
  }

  /** Curated answer text as paragraphs and lists: lines starting "- " or "N. " are list items. */
  function appendAnswerText(parent, answer) {
    var list = null;
    var kind = null;
    String(answer).split(/\r?\n/).forEach(function (raw) {
      var line = raw.trim();
      var bullet = /^-\s+(.*)$/.exec(line);
      var numbered = /^(\d+)\.\s+(.*)$/.exec(line);
      if (!line) {
        list = kind = null;
      } else if (bullet || numbered) {
        var wanted = bullet ? 'ul' : 'ol';
        if (kind !== wanted) {
          list = el(wanted);
          if (numbered && numbered[1] !== '1') {
            list.start = Number(numbered[1]);
          }
          parent.appendChild(list);
          kind = wanted;
        }
        list.appendChild(el('li', null, bullet ? bullet[1] : numbered[2]));
      } else {
        list = kind = null;
        parent.appendChild(el('p', null, line));
      }
    });
  }

  // ---------------------------------------------------------------- the widget's DOM

  var host = document.createElement('clinic-faq-widget');
  var shadow = host.attachShadow({ mode: 'open' });

  var stylesheet = el('link');
  stylesheet.rel = 'stylesheet';
  stylesheet.href = config.stylesheet;

  var root = el('div', 'qa-root qa-' + config.position);
  root.style.setProperty('--qa-accent', config.color); // CSSOM: allowed by a strict style-src
  root.style.setProperty('--qa-on-accent', textOn(config.color));
  root.hidden = true; // until the stylesheet has loaded: no flash of unstyled widget
  var reveal = function () {
    root.hidden = false;
  };
  stylesheet.addEventListener('load', reveal);
  stylesheet.addEventListener('error', function () {
    warn('could not load ' + config.stylesheet);
    reveal();
  });

  var launcher = button('', 'qa-launcher', function () {
    setOpen(!state.open);
  });
  launcher.setAttribute('aria-expanded', 'false');
  launcher.setAttribute('aria-controls', 'qa-panel');
  launcher.appendChild(icon(ICON_CHAT));
  launcher.appendChild(el('span', 'qa-launcher-text', 'Ask a question'));

  var panel = el('section', 'qa-panel');
  panel.id = 'qa-panel';
  panel.hidden = true;
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-modal', 'false');
  panel.setAttribute('aria-labelledby', 'qa-title');

  var header = el('header', 'qa-header');
  var title = el('h2', 'qa-title', config.title);
  title.id = 'qa-title';
  var clearButton = button('Clear', 'qa-header-button qa-clear', clearConversation);
  clearButton.setAttribute('aria-label', 'Clear conversation');
  var closeButton = button('', 'qa-header-button qa-close', function () {
    setOpen(false);
  });
  closeButton.setAttribute('aria-label', 'Close chat');
  closeButton.appendChild(icon(ICON_CLOSE));
  header.appendChild(title);
  header.appendChild(clearButton);
  header.appendChild(closeButton);

  var log = el('div', 'qa-log');
  log.setAttribute('role', 'log');
  log.setAttribute('aria-live', 'polite');
  log.setAttribute('aria-label', 'Conversation');
  log.tabIndex = 0; // scrollable by keyboard

  var contactBar = el('p', 'qa-contact-bar');
  contactBar.appendChild(el('span', null, 'Need a person? '));
  appendContactOptions(contactBar);

  var form = el('form', 'qa-form');
  form.noValidate = true;
  var inputLabel = el('label', 'qa-visually-hidden', 'Your question');
  inputLabel.htmlFor = 'qa-input';
  var input = el('input', 'qa-input');
  input.id = 'qa-input';
  input.type = 'text';
  input.autocomplete = 'off';
  input.maxLength = MAX_QUESTION_CHARS;
  input.placeholder = 'Type your question';
  input.setAttribute('enterkeyhint', 'send');
  var sendButton = el('button', 'qa-send', 'Send');
  sendButton.type = 'submit';
  form.appendChild(inputLabel);
  form.appendChild(input);
  form.appendChild(sendButton);

  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(contactBar);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(launcher);
  shadow.appendChild(stylesheet);
  shadow.appendChild(root);

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question || state.busy) {
      return;
    }
    input.value = '';
    ask(question, true);
  });

  root.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && state.open) {
      event.preventDefault();
      setOpen(false);
    }
  });

  // ---------------------------------------------------------------- opening, closing, clearing

  function setOpen(open) {
    state.open = open;
    panel.hidden = !open;
    root.classList.toggle('qa-is-open', open);
    launcher.setAttribute('aria-expanded', String(open));
    if (open) {
      if (!log.firstChild) {
        showGreeting();
      }
      input.focus();
    } else {
      launcher.focus();
    }
  }

  function clearConversation() {
    state.turn += 1;
    state.history = [];
    state.requests.forEach(function (controller) {
      controller.abort();
    });
    state.requests = [];
    setBusy(false);
    while (log.firstChild) {
      log.removeChild(log.firstChild);
    }
    showGreeting();
    input.value = '';
    input.focus();
  }

  function setBusy(busy) {
    state.busy = busy;
    sendButton.disabled = busy;
    log.setAttribute('aria-busy', String(busy));
  }

  // ---------------------------------------------------------------- messages

  function addMessage(node) {
    log.appendChild(node);
    // show the start of the new message (a long answer should not open at its end)
    log.scrollTop = Math.max(0, node.offsetTop - 8);
    return node;
  }

  function botMessage(extraClass) {
    return el('div', 'qa-message qa-bot' + (extraClass ? ' ' + extraClass : ''));
  }

  function showGreeting() {
    var message = botMessage('qa-greeting');
    var intro = config.clinicName
      ? 'Hello! I am an automated assistant that answers common questions from the FAQ of ' + config.clinicName + '.'
      : "Hello! I am an automated assistant that answers common questions from the clinic's FAQ.";
    message.appendChild(el('p', null, intro));
    message.appendChild(
      el('p', null, 'I am not a doctor or nurse and cannot give you medical advice or assess your symptoms.')
    );
    var emergency = el('p', 'qa-greeting-emergency');
    emergency.appendChild(el('strong', null, 'Not for emergencies: '));
    emergency.appendChild(
      document.createTextNode('if you think you have a medical emergency, call your local emergency number now.')
    );
    message.appendChild(emergency);
    addMessage(message);
  }

  function showUserMessage(question) {
    var message = el('div', 'qa-message qa-user');
    message.appendChild(el('span', 'qa-visually-hidden', 'You: '));
    message.appendChild(document.createTextNode(question));
    addMessage(message);
  }

  function showTyping() {
    var message = botMessage('qa-typing');
    message.appendChild(el('span', 'qa-visually-hidden', 'Looking for an answer…'));
    var dots = el('span', 'qa-dots');
    dots.setAttribute('aria-hidden', 'true');
    for (var i = 0; i < 3; i += 1) {
      dots.appendChild(el('span', 'qa-dot'));
    }
    message.appendChild(dots);
    return addMessage(message);
  }

  function appendContactOptions(parent) {
    var options = [];
    if (config.contactUrl) {
      options.push(link(config.contactLabel, config.contactUrl, false));
    }
    if (config.phone) {
      var tel = config.phone.replace(/[^0-9+]/g, '');
      var phone = tel ? link('Call ' + config.phone, 'tel:' + tel, false) : el('span', null, config.phone);
      phone.classList.add('qa-phone');
      options.push(phone);
    }
    if (!options.length) {
      options.push(el('span', null, 'Please contact the clinic directly.'));
    }
    options.forEach(function (option, i) {
      if (i > 0) {
        parent.appendChild(el('span', 'qa-separator', ' · '));
      }
      option.classList.add('qa-contact-option');
      parent.appendChild(option);
    });
  }

  function appendNote(parent, note) {
    if (note) {
      var box = el('p', 'qa-note');
      box.appendChild(el('strong', null, 'Please note: '));
      box.appendChild(document.createTextNode(note));
      parent.appendChild(box);
    }
  }

  function appendDisclaimer(parent, disclaimer) {
    if (disclaimer) {
      parent.appendChild(el('p', 'qa-disclaimer', disclaimer));
    }
  }

  function appendSource(parent, source) {
    if (!source) {
      return;
    }
    var name = text(source.title) || text(source.publisher);
    var url = httpUrl(source.url);
    if (!name && !url) {
      return;
    }
    var line = el('p', 'qa-source');
    line.appendChild(el('span', 'qa-source-label', 'Source: '));
    line.appendChild(url ? link(name || new URL(url).hostname, url, true) : el('cite', null, name));
    var details = [];
    if (source.title && source.publisher) {
      details.push(source.publisher);
    }
    if (source.author) {
      details.push('by ' + source.author);
    }
    if (source.updated || source.published) {
      details.push(source.updated ? 'updated ' + source.updated : 'published ' + source.published);
    }
    if (details.length) {
      line.appendChild(document.createTextNode(' (' + details.join(', ') + ')'));
    }
    parent.appendChild(line);
  }

  function appendSuggestions(parent, heading, alternatives, context) {
    if (!alternatives || !alternatives.length) {
      return;
    }
    var group = el('div', 'qa-suggestions');
    group.setAttribute('role', 'group');
    var label = el('p', 'qa-suggestions-label', heading);
    label.id = uniqueId('qa-suggestions-');
    group.setAttribute('aria-labelledby', label.id);
    group.appendChild(label);
    alternatives.forEach(function (alternative) {
      group.appendChild(
        button(alternative.question, 'qa-suggestion', function () {
          showEntry(alternative, context, true);
        })
      );
    });
    parent.appendChild(group);
  }

  function appendFeedback(parent, answerId, question) {
    var group = el('div', 'qa-feedback');
    group.setAttribute('role', 'group');
    var label = el('span', 'qa-feedback-label', 'Was this helpful?');
    label.id = uniqueId('qa-feedback-');
    group.setAttribute('aria-labelledby', label.id);
    var status = el('p', 'qa-feedback-status');
    var sent = false;
    var yes = button('Yes', 'qa-vote', function () {
      vote(true, yes);
    });
    var no = button('No', 'qa-vote', function () {
      vote(false, no);
    });
    [yes, no].forEach(function (b) {
      b.setAttribute('aria-pressed', 'false');
    });
    group.appendChild(label);
    group.appendChild(yes);
    group.appendChild(no);
    parent.appendChild(group);
    parent.appendChild(status);

    function vote(helpful, chosen) {
      if (sent) {
        return;
      }
      sent = true;
      chosen.setAttribute('aria-pressed', 'true');
      status.textContent = 'Sending…';
      var body = { answer_id: answerId, helpful: helpful };
      if (question) {
        body.question = question.slice(0, MAX_QUESTION_CHARS);
      }
      request('POST', 'v1/feedback', body)
        .then(function (reply) {
          if (reply.status !== 201) {
            throw new ApiError(reply.status >= 500 ? 'unavailable' : 'rejected', reply.status);
          }
          status.textContent = helpful
            ? 'Thank you for your feedback.'
            : 'Thank you. If you still need help, please contact the clinic.';
        })
        .catch(function () {
          sent = false;
          chosen.setAttribute('aria-pressed', 'false');
          status.textContent = 'Sorry, your feedback could not be sent. Please try again.';
        });
    }
  }

  /** An FAQ entry's curated answer, with its source and the feedback buttons. */
  function appendEntry(parent, entry, context) {
    appendNote(parent, context.note);
    if (context.about) {
      // the message was read as a follow-up of an earlier question: say which
      parent.appendChild(el('p', 'qa-about', 'Answering about: ' + context.about));
    }
    var matched = el('p', 'qa-matched');
    matched.appendChild(el('span', 'qa-visually-hidden', 'FAQ question: '));
    matched.appendChild(document.createTextNode(entry.question));
    parent.appendChild(matched);
    var body = el('div', 'qa-answer');
    appendAnswerText(body, entry.answer);
    parent.appendChild(body);
    appendSource(parent, entry.source);
  }

  function showReply(question, reply) {
    var context = { question: question, note: reply.note, disclaimer: reply.disclaimer, about: reply.context };
    remember(question, reply.status === 'answered' && reply.answer ? reply.answer.id : null);
    if (reply.status === 'urgent') {
      showUrgent(reply);
      return;
    }
    var message = botMessage('qa-' + String(reply.status).replace(/[^a-z_]/g, ''));
    if (reply.message) {
      // beside an answer the message is a quiet lead-in; otherwise it is what the reply says
      message.appendChild(el('p', reply.status === 'answered' ? 'qa-lead' : 'qa-message-text', reply.message));
    }
    if (reply.status === 'answered' && reply.answer) {
      appendEntry(message, reply.answer, context);
      appendFeedback(message, reply.answer.id, question);
      appendSuggestions(message, 'Related questions:', reply.alternatives, context);
    } else if (reply.status === 'clarify') {
      appendNote(message, reply.note);
      appendSuggestions(message, 'Choose the question you meant:', reply.alternatives, context);
    } else {
      appendNote(message, reply.note);
      var contact = el('p', 'qa-contact');
      appendContactOptions(contact);
      message.appendChild(contact);
    }
    appendDisclaimer(message, reply.disclaimer);
    addMessage(message);
  }

  function showUrgent(reply) {
    var message = el('div', 'qa-message qa-urgent');
    message.setAttribute('role', 'alert');
    var heading = el('p', 'qa-urgent-title');
    heading.appendChild(el('span', 'qa-urgent-mark', '!'));
    heading.appendChild(document.createTextNode(' Possible emergency'));
    message.appendChild(heading);
    message.appendChild(el('p', 'qa-urgent-text', reply.message));
    appendNote(message, reply.note);
    appendDisclaimer(message, reply.disclaimer);
    addMessage(message);
  }

  function showError(error, retry) {
    var message = botMessage('qa-error');
    message.appendChild(el('p', null, errorText(error)));
    if (error.kind !== 'rejected') {
      message.appendChild(
        button('Retry', 'qa-retry', function () {
          if (state.busy) {
            return;
          }
          log.removeChild(message);
          input.focus(); // the focused Retry button goes away
          retry();
        })
      );
    }
    addMessage(message);
  }

  function errorText(error) {
    switch (error.kind) {
      case 'timeout':
        return 'The FAQ service is taking too long to answer. Please try again.';
      case 'rate_limited':
        return 'You have sent many questions in a short time. Please wait a moment, then try again.';
      case 'unavailable':
        return 'The FAQ service is not available right now. Please try again in a moment, or contact the clinic.';
      case 'rejected':
        return error.status === 422
          ? 'Sorry, that question could not be read. Please shorten or rephrase it.'
          : 'Sorry, something went wrong. Please try another question, or contact the clinic.';
      default:
        return 'Could not reach the FAQ service. Please check your connection and try again.';
    }
  }

  // ---------------------------------------------------------------- talking to the API

  function ApiError(kind, status) {
    this.kind = kind; // network | timeout | cancelled | rate_limited | unavailable | rejected
    this.status = status || 0;
  }

  /** fetch with a timeout; resolves {status, data} for any HTTP answer, rejects with an ApiError otherwise. */
  function request(method, path, body) {
    var controller = new AbortController();
    var timedOut = false;
    var timer = setTimeout(function () {
      timedOut = true;
      controller.abort();
    }, config.timeoutMs);
    state.requests.push(controller);
    var options = { method: method, signal: controller.signal, credentials: 'omit', cache: 'no-store' };
    if (body) {
      options.headers = { 'content-type': 'application/json' };
      options.body = JSON.stringify(body);
    }
    return fetch(new URL(path, config.apiBase).href, options)
      .then(function (response) {
        return response.json().then(
          function (data) {
            return { status: response.status, data: data };
          },
          function () {
            return { status: response.status, data: null };
          }
        );
      })
      .catch(function () {
        throw new ApiError(timedOut ? 'timeout' : controller.signal.aborted ? 'cancelled' : 'network');
      })
      .finally(function () {
        clearTimeout(timer);
        state.requests = state.requests.filter(function (c) {
          return c !== controller;
        });
      });
  }

  function checkReply(reply) {
    if (reply.status === 429) {
      throw new ApiError('rate_limited', 429);
    }
    if (reply.status >= 500) {
      throw new ApiError('unavailable', reply.status);
    }
    if (reply.status !== 200 || !reply.data || typeof reply.data !== 'object') {
      throw new ApiError('rejected', reply.status);
    }
    return reply.data;
  }

  /** Send one request for the conversation: typing indicator, then the reply, or an error with Retry. */
  function converse(send, render, retry) {
    var turn = state.turn; // "clear" bumps it: a late reply to the old conversation is dropped
    setBusy(true);
    var typing = showTyping();
    send()
      .then(checkReply)
      .then(
        function (data) {
          if (turn === state.turn) {
            typing.remove();
            render(data);
          }
        },
        function (error) {
          if (turn === state.turn && error.kind !== 'cancelled') {
            typing.remove();
            showError(error instanceof ApiError ? error : new ApiError('network'), retry);
          }
        }
      )
      .finally(function () {
        if (turn === state.turn) {
          typing.remove();
          setBusy(false);
        }
      });
  }

  /** Keep a turn for the next questions' context (the last MAX_TURNS, in this page only). */
  function remember(question, answerId) {
    state.history.push({ question: question, answer_id: answerId });
    state.history = state.history.slice(-MAX_TURNS);
  }

  function ask(question, echo) {
    if (echo) {
      showUserMessage(question);
    }
    var body = { question: question };
    if (state.history.length) {
      body.context = state.history.slice();
    }
    converse(
      function () {
        return request('POST', 'v1/ask', body);
      },
      function (reply) {
        showReply(question, reply);
      },
      function () {
        ask(question, false);
      }
    );
  }

  /** A "did you mean" choice: fetch that entry and show its curated answer. */
  function showEntry(alternative, context, echo) {
    if (state.busy) {
      return;
    }
    if (echo) {
      showUserMessage(alternative.question);
    }
    converse(
      function () {
        return request('GET', 'v1/faq/' + encodeURIComponent(alternative.id));
      },
      function (entry) {
        // the patient chose this entry for their last question: it is that turn's answer now
        var last = state.history[state.history.length - 1];
        if (last && last.question === context.question) {
          last.answer_id = entry.id;
        }
        var message = botMessage('qa-answered');
        appendEntry(message, entry, context);
        appendFeedback(message, entry.id, context.question);
        appendDisclaimer(message, context.disclaimer);
        addMessage(message);
      },
      function () {
        showEntry(alternative, context, false);
      }
    );
  }

  // ---------------------------------------------------------------- start

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) {
    mount();
  } else {
    document.addEventListener('DOMContentLoaded', mount);
  }
})();
