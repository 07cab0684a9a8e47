; The CallBridge installer for Windows, built on Linux with makensis (Debian's nsis package) by
; `scripts/windows.sh package`:
;   makensis -DVERSION=0.1.0 -DSOURCE=DIR -DOUTFILE=setup.exe -DICON=icons/icon.ico installer.nsi
; where DIR holds callbridge-desktop.exe, callbridge.exe, WebView2Loader.dll and README.txt.
;
; A per-user install, no administrator rights asked: the programs go to
; %LOCALAPPDATA%\Programs\CallBridge, with a Start-menu entry, an "Apps & features" entry and
; CallBridge registered for tel: and callto: links under HKCU\Software\Classes (the values
; tauri-plugin-deep-link writes when the app starts), plus the Capabilities that list it under
; Settings > Default apps. Starting at login is left to the app's own "Start at login" setting.
; `setup.exe /S` installs silently; `uninstall.exe /S` removes silently all of the above and the
; autostart value the app may have written. The user's settings and call history under
; %APPDATA%\callbridge are kept, and secrets stay in the Credential Manager.
;
; NSIS reference: https://nsis.sourceforge.io/Docs/ ; URL protocols:
; https://learn.microsoft.com/en-us/previous-versions/windows/internet-explorer/ie-developer/platform-apis/aa767914(v=vs.85)
; Default apps registration: https://learn.microsoft.com/en-us/windows/win32/shell/default-programs

Unicode true
Target amd64-unicode
; -DCOMPRESSOR=zlib packs faster and larger (scripts/windows.sh uses it for debug builds).
!ifndef COMPRESSOR
  !define COMPRESSOR "/SOLID lzma"
!endif
SetCompressor ${COMPRESSOR}

!ifndef VERSION
  !error "pass -DVERSION=x.y.z"
!endif
!ifndef SOURCE
  !error "pass -DSOURCE=DIR (the directory with the files to install)"
!endif
!ifndef OUTFILE
  !define OUTFILE "CallBridge-${VERSION}-windows-x64-setup.exe"
!endif

!define PRODUCT "CallBridge"
!define APP_EXE "callbridge-desktop.exe"
!define IDENTIFIER "dev.callbridge.CallBridge"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${PRODUCT}"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define STARTUP_APPROVED_KEY "Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
!define CAPABILITIES_KEY "Software\${PRODUCT}\Capabilities"
!define PROGID "${PRODUCT}.Url"

Name "${PRODUCT}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${PRODUCT}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
BrandingText "${PRODUCT} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "LegalCopyright" "${PRODUCT} contributors"

!include "MUI2.nsh"
!include "LogicLib.nsh"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${PRODUCT}"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; Stops this user's running CallBridge so its files can be replaced or removed. The engine's store is
; written transaction by transaction (SQLite in WAL mode), so ending the process loses nothing.
!macro StopRunningApp
  ReadEnvStr $0 USERNAME
  nsExec::Exec '"$SYSDIR\taskkill.exe" /F /FI "USERNAME eq $0" /IM ${APP_EXE}'
  Pop $0
!macroend

; Registers one link scheme (tel, callto) for the installed app, as the app itself does at start.
!macro RegisterScheme SCHEME
  WriteRegStr HKCU "Software\Classes\${SCHEME}" "" "URL:${IDENTIFIER} protocol"
  WriteRegStr HKCU "Software\Classes\${SCHEME}" "URL Protocol" ""
  WriteRegStr HKCU "Software\Classes\${SCHEME}\DefaultIcon" "" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "Software\Classes\${SCHEME}\shell\open\command" "" '"$INSTDIR\${APP_EXE}" "%1"'
  WriteRegStr HKCU "${CAPABILITIES_KEY}\URLAssociations" "${SCHEME}" "${PROGID}"
!macroend

; Removes a scheme's registration only while it still opens this CallBridge: another app may have
; taken the scheme since.
!macro UnregisterScheme SCHEME
  ReadRegStr $0 HKCU "Software\Classes\${SCHEME}\shell\open\command" ""
  ${If} $0 == '"$INSTDIR\${APP_EXE}" "%1"'
    DeleteRegKey HKCU "Software\Classes\${SCHEME}"
  ${EndIf}
!macroend

Section "CallBridge" SecMain
  SectionIn RO
  !insertmacro StopRunningApp
  SetOutPath "$INSTDIR"
  File "${SOURCE}\${APP_EXE}"
  File "${SOURCE}\callbridge.exe"
  File "${SOURCE}\WebView2Loader.dll"
  File "${SOURCE}\README.txt"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateShortCut "$SMPROGRAMS\${PRODUCT}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0

  ; tel: and callto: links open CallBridge's dial popup (never a call without a click).
  WriteRegStr HKCU "Software\Classes\${PROGID}" "" "${PRODUCT} phone link"
  WriteRegStr HKCU "Software\Classes\${PROGID}" "URL Protocol" ""
  WriteRegStr HKCU "Software\Classes\${PROGID}\DefaultIcon" "" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "Software\Classes\${PROGID}\shell\open\command" "" '"$INSTDIR\${APP_EXE}" "%1"'
  WriteRegStr HKCU "${CAPABILITIES_KEY}" "ApplicationName" "${PRODUCT}"
  WriteRegStr HKCU "${CAPABILITIES_KEY}" "ApplicationDescription" "Click-to-call and call notifications between your CRM and your phone system"
  !insertmacro RegisterScheme "tel"
  !insertmacro RegisterScheme "callto"
  WriteRegStr HKCU "Software\RegisteredApplications" "${PRODUCT}" "${CAPABILITIES_KEY}"

  ; Apps & features.
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  !insertmacro StopRunningApp
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\callbridge.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\README.txt"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${PRODUCT}.lnk"

  !insertmacro UnregisterScheme "tel"
  !insertmacro UnregisterScheme "callto"
  DeleteRegKey HKCU "Software\Classes\${PROGID}"
  DeleteRegValue HKCU "Software\RegisteredApplications" "${PRODUCT}"
  DeleteRegKey HKCU "Software\${PRODUCT}"

  ; "Start at login", if the user turned it on in the app (tauri-plugin-autostart writes these).
  DeleteRegValue HKCU "${RUN_KEY}" "${PRODUCT}"
  DeleteRegValue HKCU "${STARTUP_APPROVED_KEY}" "${PRODUCT}"

  ; The webviews' cache (WebView2 keeps it in a folder named after the app's identifier).
  RMDir /r "$LOCALAPPDATA\${IDENTIFIER}"

  DeleteRegKey HKCU "${UNINSTALL_KEY}"
SectionEnd
